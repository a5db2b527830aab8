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
``prepare`` (``asyncpg.utils._mogrify``); that inner call is recognized and not checked (nor
reported) a second time.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any

import wrapt

from rasp.context import current
from rasp.guard import Sink, check_sql
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch
from rasp.sinks._dbapi import sql_method

__all__ = ["PATCHES", "SINK"]

SINK = Sink("asyncpg", Dialect.POSTGRESQL, skip_modules=("asyncpg",))
_MODULE = "asyncpg.connection"

# The query copy_from_query has checked, for the prepare() it runs on the same query in the
# same task. Set inside that task only, so concurrent tasks of the request are unaffected.
_checked: ContextVar[object] = ContextVar("rasp_asyncpg_checked", default=None)


def _statement(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[0] if args else kwargs.get("query")


def _prepare(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    context = current()
    if context is not None:
        query = _statement(args, kwargs)
        if query is not _checked.get():
            check_sql(context, query, SINK, instance)
    return wrapped(*args, **kwargs)


def _copy_from_query(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    context = current()
    if context is None:
        return wrapped(*args, **kwargs)
    query = _statement(args, kwargs)
    check_sql(context, query, SINK, instance)
    if len(args) < 2:  # no arguments to inline: the query is not prepared again
        return wrapped(*args, **kwargs)
    return _marked(query, wrapped, args, kwargs)


async def _marked(
    query: object, wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    token = _checked.set(query)
    try:
        original: Awaitable[Any] = wrapped(*args, **kwargs)
        return await original
    finally:
        _checked.reset(token)


def _copy_where(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    context = current()
    if context is not None:
        where = kwargs.get("where")
        if where:
            check_sql(context, where, SINK, instance)
    return wrapped(*args, **kwargs)


def _function(guard: Any) -> Any:
    def make_wrapper(original: Any) -> Any:
        return wrapt.FunctionWrapper(original, guard)

    return make_wrapper


_query = sql_method(SINK)

PATCHES = (
    Patch(_MODULE, "Connection.execute", _query),
    Patch(_MODULE, "Connection.executemany", sql_method(SINK, keyword="command")),
    Patch(_MODULE, "Connection.fetch", _query),
    Patch(_MODULE, "Connection.fetchrow", _query),
    Patch(_MODULE, "Connection.fetchval", _query),
    Patch(_MODULE, "Connection.fetchmany", _query),
    Patch(_MODULE, "Connection.cursor", _query),
    Patch(_MODULE, "Connection.prepare", _function(_prepare)),
    Patch(_MODULE, "Connection.copy_from_query", _function(_copy_from_query)),
    Patch(_MODULE, "Connection.copy_to_table", _function(_copy_where)),
    Patch(_MODULE, "Connection.copy_records_to_table", _function(_copy_where)),
)
