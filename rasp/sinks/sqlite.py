"""sqlite3: guard every statement run through a connection or a cursor.

``sqlite3.Connection`` and ``Cursor`` are immutable C types, so the patch wraps ``connect``
(under both of its names, ``sqlite3.connect`` and ``sqlite3.dbapi2.connect``, which Django
and SQLAlchemy use) and hands in a subclass of the connection factory, the app's own
``factory=`` included. The subclass guards ``execute``, ``executemany`` and
``executescript`` and gives out cursors of a guarded subclass of the requested cursor class.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, cast

from rasp.context import current
from rasp.guard import Sink, check_sql
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch
from rasp.sinks._wrapper import Guarded

__all__ = ["PATCHES"]

_log = logging.getLogger(__name__)

SINK = Sink("sqlite3", Dialect.SQLITE, skip_modules=("sqlite3",))
_FACTORY_POSITION = 5  # connect(database, timeout, detect_types, isolation_level,
#                                check_same_thread, factory, ...)


def _check(sql: object) -> None:
    context = current()
    if context is not None:
        check_sql(context, sql, SINK)


@functools.cache
def _guarded_cursor(base: type) -> type:
    class GuardedCursor(base):  # type: ignore[misc]
        __slots__ = ()

        def execute(self, sql: Any, parameters: Any = (), /) -> Any:
            _check(sql)
            return super().execute(sql, parameters)

        def executemany(self, sql: Any, parameters: Any, /) -> Any:
            _check(sql)
            return super().executemany(sql, parameters)

        def executescript(self, sql_script: Any, /) -> Any:
            _check(sql_script)
            return super().executescript(sql_script)

    GuardedCursor.__name__ = base.__name__
    GuardedCursor.__qualname__ = base.__qualname__
    GuardedCursor.__module__ = base.__module__
    return GuardedCursor


@functools.cache
def _guarded_connection(base: type) -> type:
    import sqlite3

    class GuardedConnection(base):  # type: ignore[misc]
        __slots__ = ()

        def cursor(self, factory: Any = sqlite3.Cursor) -> Any:
            if isinstance(factory, type) and issubclass(factory, sqlite3.Cursor):
                factory = _guarded_cursor(factory)
            return super().cursor(factory)

        def execute(self, sql: Any, parameters: Any = (), /) -> Any:
            _check(sql)
            return super().execute(sql, parameters)

        def executemany(self, sql: Any, parameters: Any, /) -> Any:
            _check(sql)
            return super().executemany(sql, parameters)

        def executescript(self, sql_script: Any, /) -> Any:
            _check(sql_script)
            return super().executescript(sql_script)

    GuardedConnection.__name__ = base.__name__
    GuardedConnection.__qualname__ = base.__qualname__
    GuardedConnection.__module__ = base.__module__
    GuardedConnection._rasp_guarded = True
    return GuardedConnection


def _connect(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    import sqlite3

    if len(args) > _FACTORY_POSITION:
        factory = args[_FACTORY_POSITION]
    else:
        factory = kwargs.get("factory", sqlite3.Connection)
    if (
        isinstance(factory, type)
        and issubclass(factory, sqlite3.Connection)
        and not getattr(factory, "_rasp_guarded", False)
    ):
        guarded = _guarded_connection(cast(type, factory))
        if len(args) > _FACTORY_POSITION:
            args = (*args[:_FACTORY_POSITION], guarded, *args[_FACTORY_POSITION + 1 :])
        else:
            kwargs = {**kwargs, "factory": guarded}
    elif not getattr(factory, "_rasp_guarded", False):
        _log.debug("rasp: sqlite3 factory %r is not a Connection subclass; unguarded", factory)
    return wrapped(*args, **kwargs)


def _wrap_connect(original: Any) -> Any:
    return Guarded(original, _connect)


def connections_opened_before() -> int:
    """How many sqlite3 connections opened before the guard exist (they stay unguarded).

    Their class is an immutable C type, so they cannot be guarded after the fact; the best
    the agent can do is say so, once, at start-up.
    """
    import gc
    import sys

    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is None:
        return 0
    connection_type = sqlite3.Connection
    return sum(
        1
        for obj in gc.get_objects()
        if isinstance(obj, connection_type) and not getattr(type(obj), "_rasp_guarded", False)
    )


PATCHES = (
    Patch("sqlite3", "connect", _wrap_connect),
    Patch("sqlite3.dbapi2", "connect", _wrap_connect),
)
