"""The one wrapper for the SQL methods of database drivers.

A driver module lists its chokepoints as :class:`~rasp.sinks.Patch` records made with
:func:`sql_method`; the wrapper has the four beats every sink has: no request context ->
call the original at once; take the statement out of the arguments; ask the guard (which
contains its own errors); call the original outside of that, so the app's own exceptions and
tracebacks are untouched. Async methods are checked when called, before their coroutine
exists, so a blocked statement is never sent.

Drivers that call their own guarded methods on the way down (PyMySQL's ``executemany`` ->
``execute`` -> ``Connection.query``; asyncpg's ``copy_from_query`` -> ``prepare``) use
``outermost=True``: a statement is then judged once, by the call the app made, on the text
the app wrote (before the driver interpolated bound parameters into it).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from rasp.context import current
from rasp.guard import Sink, check_sql
from rasp.sinks._wrapper import Guarded

__all__ = ["sql_method"]

# True while an ``outermost`` call runs in this thread or task, so nested ones are skipped.
_UNDERWAY: ContextVar[bool] = ContextVar("rasp_sql_call_underway", default=False)


def sql_method(
    sink: Sink, *, position: int = 0, keyword: str = "query", outermost: bool = False
) -> Callable[[Any], Any]:
    """A ``make_wrapper`` for a method whose statement is argument ``position`` (counted
    after ``self``) or keyword ``keyword``; with ``outermost``, only when no other
    ``outermost`` call is underway in this thread or task."""

    def statement(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return args[position] if len(args) > position else kwargs.get(keyword)

    def guarded(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        context = current()
        if context is not None:
            check_sql(context, statement(args, kwargs), sink, instance)
        return wrapped(*args, **kwargs)

    def guarded_outermost(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        context = current()
        if context is None or _UNDERWAY.get():
            return wrapped(*args, **kwargs)
        check_sql(context, statement(args, kwargs), sink, instance)
        token = _UNDERWAY.set(True)
        try:
            return wrapped(*args, **kwargs)
        finally:
            _UNDERWAY.reset(token)

    def guarded_outermost_async(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        context = current()
        if context is None or _UNDERWAY.get():
            return wrapped(*args, **kwargs)
        check_sql(context, statement(args, kwargs), sink, instance)
        return _underway(wrapped(*args, **kwargs))

    def make_wrapper(original: Any) -> Any:
        if not outermost:
            return Guarded(original, guarded)
        if inspect.iscoroutinefunction(original):
            return Guarded(original, guarded_outermost_async)
        return Guarded(original, guarded_outermost)

    return make_wrapper


async def _underway(awaitable: Awaitable[Any]) -> Any:
    # Set inside the coroutine, so it holds in the task that awaits it and nowhere else.
    token = _UNDERWAY.set(True)
    try:
        return await awaitable
    finally:
        _UNDERWAY.reset(token)
