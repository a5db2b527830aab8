"""PyMySQL: guard ``Cursor.execute``/``executemany`` and ``Connection.query``.

Every cursor class (``DictCursor``, ``SSCursor``, ``SSDictCursor``) inherits ``execute`` and
``executemany`` from ``pymysql.cursors.Cursor``, so two patches cover them all. The cursor
methods are checked with the statement *as the app wrote it*, before PyMySQL interpolates
the bound parameters client-side (escaped, so they are data). ``Connection.query`` takes
final SQL text; it is guarded for apps that call it directly.

The driver calls its own guarded methods on the way down: ``executemany`` loops over
``execute`` (or builds one multi-row ``INSERT`` and hands it, parameters already
interpolated, to ``execute``), and ``execute`` ends in ``Connection.query``. Only the
outermost call is checked, so a statement is judged once, on its template (one alert in
monitor mode, and no false alarm on interpolated data). The same holds for mysqlclient and
aiomysql, whose sink modules use :func:`outermost_sql_method` too.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import wrapt

from rasp.context import current
from rasp.guard import Sink, check_sql
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch

__all__ = ["PATCHES", "outermost_sql_method"]

SINK = Sink("pymysql", Dialect.MYSQL, skip_modules=("pymysql",))

# True while a guarded call runs in this thread or task: the driver's own nested calls
# (executemany -> execute -> Connection.query) are then not checked a second time.
_UNDERWAY: ContextVar[bool] = ContextVar("rasp_mysql_underway", default=False)


def outermost_sql_method(
    sink: Sink, *, position: int = 0, keyword: str = "query"
) -> Callable[[Any], Any]:
    """A ``make_wrapper`` for a driver method whose statement is argument ``position``
    (after ``self``) or keyword ``keyword``, checked only when no guarded call is underway.

    Coroutine functions are checked when called, before their coroutine exists, so a
    blocked statement is never sent; the returned coroutine marks the call underway while
    it runs.
    """

    def guarded(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        context = current()
        if context is None or _UNDERWAY.get():
            return wrapped(*args, **kwargs)
        query = args[position] if len(args) > position else kwargs.get(keyword)
        check_sql(context, query, sink, instance)
        token = _UNDERWAY.set(True)
        try:
            return wrapped(*args, **kwargs)
        finally:
            _UNDERWAY.reset(token)

    def guarded_async(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        context = current()
        if context is None or _UNDERWAY.get():
            return wrapped(*args, **kwargs)
        query = args[position] if len(args) > position else kwargs.get(keyword)
        check_sql(context, query, sink, instance)
        return _underway(wrapped(*args, **kwargs))

    def make_wrapper(original: Any) -> Any:
        wrapper = guarded_async if inspect.iscoroutinefunction(original) else guarded
        return wrapt.FunctionWrapper(original, wrapper)

    return make_wrapper


async def _underway(awaitable: Awaitable[Any]) -> Any:
    # Set inside the coroutine, so it holds in the task that awaits it and nowhere else.
    token = _UNDERWAY.set(True)
    try:
        return await awaitable
    finally:
        _UNDERWAY.reset(token)


_method = outermost_sql_method(SINK)

PATCHES = (
    Patch("pymysql.cursors", "Cursor.execute", _method),
    Patch("pymysql.cursors", "Cursor.executemany", _method),
    Patch("pymysql.connections", "Connection.query", outermost_sql_method(SINK, keyword="sql")),
)
