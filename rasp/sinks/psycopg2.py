"""psycopg2: guard every statement run through a cursor.

``psycopg2.extensions.connection`` and ``cursor`` are C types that cannot be patched, so,
as for sqlite3, the patch hands in subclasses. ``psycopg2.connect`` is Python code that
calls ``_connect`` (the C entry point) through its module's globals at call time, so
wrapping ``psycopg2._connect`` covers ``connect`` (under any name it was imported as),
Django, SQLAlchemy, ``psycopg2.pool`` and direct ``_connect`` calls, each once.

The wrapper puts in a guarded connection class: the app's own ``connection_factory`` (or
``extensions.connection``) with a mixin *below* it in the MRO, so an app's ``cursor()``
override (``LoggingConnection``, ``RealDictConnection``) picks its cursor class first, and
the mixin guards whatever class reaches the C ``cursor()``: the explicit
``cursor_factory=``, else the connection's ``cursor_factory`` attribute read at call time
(Django and ``connect(cursor_factory=...)`` set it after connecting), else
``extensions.cursor``. The guarded cursor is a subclass of that class, so ``RealDictCursor``
and friends behave as before; it guards ``execute``, ``executemany`` and ``copy_expert``.
(``callproc`` takes a procedure name and ``mogrify`` runs nothing: left alone.)
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from rasp.context import current
from rasp.guard import Sink, check_sql
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch
from rasp.sinks._wrapper import Guarded
from rasp.sinks.psycopg import render  # psycopg2.sql.Composable has the same as_string()

__all__ = ["PATCHES", "SINK", "render"]

_log = logging.getLogger(__name__)

_FACTORY_POSITION = 1  # _connect(dsn, connection_factory, async_)
_CURSOR_FACTORY_POSITION = 1  # connection.cursor(name, cursor_factory, withhold, scrollable)


SINK = Sink("psycopg2", Dialect.POSTGRESQL, skip_modules=("psycopg2",), render=render)


def _check(cursor: Any, args: tuple[Any, ...], kwargs: dict[str, Any], keyword: str) -> None:
    context = current()
    if context is not None:
        check_sql(context, args[0] if args else kwargs.get(keyword), SINK, cursor)


def _is_guarded(cls: object) -> bool:
    return bool(getattr(cls, "_rasp_guarded", False))


@functools.cache
def _guarded_cursor(base: type) -> type:
    class GuardedCursor(base):  # type: ignore[misc]
        __slots__ = ()
        _rasp_guarded = True

        def execute(self, *args: Any, **kwargs: Any) -> Any:
            _check(self, args, kwargs, "query")
            return super().execute(*args, **kwargs)

        def executemany(self, *args: Any, **kwargs: Any) -> Any:
            _check(self, args, kwargs, "query")
            return super().executemany(*args, **kwargs)

        def copy_expert(self, *args: Any, **kwargs: Any) -> Any:
            _check(self, args, kwargs, "sql")
            return super().copy_expert(*args, **kwargs)

    GuardedCursor.__name__ = base.__name__
    GuardedCursor.__qualname__ = base.__qualname__
    GuardedCursor.__module__ = base.__module__
    return GuardedCursor


def _guard_cursor_factory(factory: Any) -> Any:
    from psycopg2.extensions import cursor  # type: ignore[import-untyped, unused-ignore]

    if isinstance(factory, type) and issubclass(factory, cursor):
        return factory if _is_guarded(factory) else _guarded_cursor(factory)
    # A callable that makes cursors: its result's class is fixed by then.
    _log.debug("rasp: psycopg2 cursor_factory %r is not a cursor subclass; unguarded", factory)
    return factory


@functools.cache
def _connection_mixin() -> type:
    from psycopg2.extensions import connection, cursor

    class GuardedConnection(connection):  # type: ignore[misc]
        __slots__ = ()
        _rasp_guarded = True

        def cursor(self, *args: Any, **kwargs: Any) -> Any:
            if len(args) > _CURSOR_FACTORY_POSITION:
                factory = args[_CURSOR_FACTORY_POSITION] or self.cursor_factory or cursor
                args = (
                    *args[:_CURSOR_FACTORY_POSITION],
                    _guard_cursor_factory(factory),
                    *args[_CURSOR_FACTORY_POSITION + 1 :],
                )
            else:
                factory = kwargs.get("cursor_factory") or self.cursor_factory or cursor
                kwargs = {**kwargs, "cursor_factory": _guard_cursor_factory(factory)}
            return super().cursor(*args, **kwargs)

    GuardedConnection.__name__ = connection.__name__
    GuardedConnection.__qualname__ = connection.__qualname__
    GuardedConnection.__module__ = connection.__module__
    return GuardedConnection


@functools.cache
def _guarded_connection(base: type) -> type:
    mixin = _connection_mixin()
    if base is mixin.__base__:
        return mixin
    # The mixin goes after every class of the app's in the MRO, right above the C type.
    return type(
        base.__name__,
        (base, mixin),
        {"__slots__": (), "__module__": base.__module__, "__qualname__": base.__qualname__},
    )


def _connect(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from psycopg2.extensions import connection

    positional = len(args) > _FACTORY_POSITION
    factory = args[_FACTORY_POSITION] if positional else kwargs.get("connection_factory")
    if factory is None:
        factory = connection
    if isinstance(factory, type) and issubclass(factory, connection):
        if not _is_guarded(factory):
            guarded = _guarded_connection(factory)
            if positional:
                args = (*args[:_FACTORY_POSITION], guarded, *args[_FACTORY_POSITION + 1 :])
            else:
                kwargs = {**kwargs, "connection_factory": guarded}
    else:
        _log.debug("rasp: psycopg2 connection_factory %r is not a connection; unguarded", factory)
    return wrapped(*args, **kwargs)


def _wrap_connect(original: Any) -> Any:
    return Guarded(original, _connect)


PATCHES: tuple[Patch, ...] = (Patch("psycopg2", "_connect", _wrap_connect),)
