"""asyncpg: guard every statement an app hands to a connection, and so to a pool.

The chokepoints are the public methods of ``asyncpg.connection.Connection`` that take a
statement. None of them calls another (each goes to the private ``_execute``,
``_executemany``, ``_prepare`` or the protocol), so each statement is checked once. Pools
are covered without patching them: ``Pool.fetch`` and its siblings acquire a connection and
call the same method on its ``PoolConnectionProxy``, whose methods look the method up on the
connection's class at call time (``getattr(self._con.__class__, name)``), so they reach the
patched one. ``cursor()`` is checked when called, though it returns a ``CursorFactory`` that
runs nothing until awaited or iterated: the statement is in hand at that call.

Two methods take SQL that is not a whole statement: the ``where`` filter of
``copy_to_table`` and ``copy_records_to_table`` (``COPY ... FROM STDIN WHERE <where>``).
``copy_from_query`` with arguments prepares the app's query once more through the public
``prepare`` (``asyncpg.utils._mogrify``); both are ``outermost`` methods, so that inner call
is not checked (nor reported) a second time.
"""

from __future__ import annotations

from typing import Any

from rasp.context import current
from rasp.guard import Sink, check_sql
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch
from rasp.sinks._dbapi import sql_method
from rasp.sinks._wrapper import Guarded

__all__ = ["PATCHES", "SINK"]

SINK = Sink("asyncpg", Dialect.POSTGRESQL, skip_modules=("asyncpg",))
_MODULE = "asyncpg.connection"


def _copy_where(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    context = current()
    if context is not None:
        where = kwargs.get("where")
        if where:
            check_sql(context, where, SINK, instance)
    return wrapped(*args, **kwargs)


def _guard_where(original: Any) -> Any:
    return Guarded(original, _copy_where)


_query = sql_method(SINK)

PATCHES = (
    Patch(_MODULE, "Connection.execute", _query),
    Patch(_MODULE, "Connection.executemany", sql_method(SINK, keyword="command")),
    Patch(_MODULE, "Connection.fetch", _query),
    Patch(_MODULE, "Connection.fetchrow", _query),
    Patch(_MODULE, "Connection.fetchval", _query),
    Patch(_MODULE, "Connection.fetchmany", _query),
    Patch(_MODULE, "Connection.cursor", _query),
    # copy_from_query with arguments prepares the same query once more through prepare().
    Patch(_MODULE, "Connection.prepare", sql_method(SINK, outermost=True)),
    Patch(_MODULE, "Connection.copy_from_query", sql_method(SINK, outermost=True)),
    Patch(_MODULE, "Connection.copy_to_table", _guard_where),
    Patch(_MODULE, "Connection.copy_records_to_table", _guard_where),
)
