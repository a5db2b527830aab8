"""Shared wrapper for the SQL execute methods of database drivers.

A driver module lists its chokepoints as :class:`~rasp.sinks.Patch` records made with
:func:`sql_method`; the wrapper has the four beats every sink has: no request context ->
call the original at once; take the statement out of the arguments; ask the guard (which
contains its own errors); call the original outside of that, so the app's own exceptions and
tracebacks are untouched. Async methods are checked when called, before their coroutine
exists, so a blocked statement is never sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wrapt

from rasp.context import current
from rasp.guard import Sink, check_sql

__all__ = ["sql_method"]


def sql_method(sink: Sink, *, position: int = 0, keyword: str = "query") -> Callable[[Any], Any]:
    """A ``make_wrapper`` for a method whose statement is argument ``position`` (counted
    after ``self``) or keyword ``keyword``."""

    def guarded(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        context = current()
        if context is not None:
            query = args[position] if len(args) > position else kwargs.get(keyword)
            check_sql(context, query, sink, instance)
        return wrapped(*args, **kwargs)

    def make_wrapper(original: Any) -> Any:
        return wrapt.FunctionWrapper(original, guarded)

    return make_wrapper
