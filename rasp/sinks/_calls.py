"""The wrapper shared by the process and file-system sinks.

Standard-library calls nest: ``os.makedirs`` calls ``os.mkdir``, ``subprocess.Popen`` may
call ``os.posix_spawn``, ``shutil.rmtree`` calls ``os.unlink`` for every file. When the
outermost guarded call reported an attack and runs anyway (monitor mode), the calls it makes
on the way down are not judged again: one attack, one alert (a context variable marks the
call underway, in this thread or task, and in a child forked meanwhile). When it reported
nothing, the nested calls are judged as usual, which costs the same as marking would.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from rasp.context import RequestContext, current
from rasp.guard import Sink
from rasp.sinks._wrapper import Guarded

__all__ = ["argument", "outermost"]

Extract = Callable[[tuple[Any, ...], dict[str, Any]], object]
Check = Callable[[RequestContext, object, Sink], bool]

_UNDERWAY: ContextVar[bool] = ContextVar("rasp_call_underway", default=False)


def argument(position: int, keyword: str, default: object = None) -> Extract:
    """Take argument ``position`` (counted after ``self``) or keyword ``keyword``."""

    def extract(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
        if len(args) > position:
            return args[position]
        return kwargs.get(keyword, default)

    return extract


def outermost(check: Check, sink: Sink, *extractors: Extract) -> Callable[[Any], Any]:
    """A ``make_wrapper``: judge each extracted argument with ``check`` before the call,
    unless a monitored call is underway."""

    def guarded(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        context = current()
        if context is None or _UNDERWAY.get():
            return wrapped(*args, **kwargs)
        reported = False
        for extract in extractors:
            try:
                payload = extract(args, kwargs)
            except Exception:  # bad arguments are the original's to reject, with its error
                payload = None
            if payload is not None and check(context, payload, sink):
                reported = True
        if not reported:
            return wrapped(*args, **kwargs)
        token = _UNDERWAY.set(True)
        try:
            return wrapped(*args, **kwargs)
        finally:
            _UNDERWAY.reset(token)

    def make_wrapper(original: Any) -> Any:
        return Guarded(original, guarded)

    return make_wrapper
