"""The request carried into thread pools.

A thread pool runs its work in threads that do not see the request: ``loop.run_in_executor``
(hence aiofiles, and Django's ``sync_to_async`` with an executor) and
``ThreadPoolExecutor.submit`` from a view would run file and process calls unjudged. Work
submitted while a request is served runs with the agent's request variable set to that
request, and only that one: the pool thread keeps its own context otherwise (values its
``initializer`` set, or earlier tasks), and the submitter's other context variables (a
per-request database connection) stay where they were. Outside a request nothing changes.

asyncio's resolver is the exception: it resolves in the pool and the loop's own wrapper
judges the answer in the task already (see :mod:`rasp.sinks.network`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from rasp.context import _CURRENT, RequestContext, current
from rasp.sinks import Patch
from rasp.sinks._wrapper import Guarded

__all__ = ["PATCHES"]


def _submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    context = current()
    if context is not None and args and not _resolver(args[0]):
        args = (_carrying(context, args[0]), *args[1:])
    return wrapped(*args, **kwargs)


def _resolver(function: object) -> bool:
    # socket.getaddrinfo, or the loop's debug-mode wrapper around it
    return function is socket.getaddrinfo or (
        getattr(function, "__name__", None) == "_getaddrinfo_debug"
    )


def _carrying(context: RequestContext, function: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        token = _CURRENT.set(context)
        try:
            return function(*args, **kwargs)
        finally:
            _CURRENT.reset(token)

    return run


PATCHES = (
    Patch("concurrent.futures.thread", "ThreadPoolExecutor.submit", lambda f: Guarded(f, _submit)),
)
