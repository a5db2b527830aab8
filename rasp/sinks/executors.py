"""The request's context carried into thread pools.

A thread pool runs its work in threads that do not hold the request's context variables:
``loop.run_in_executor`` (hence aiofiles, and Django's ``sync_to_async`` with its own
executor) and ``ThreadPoolExecutor.submit`` from a view would run file and process calls
unjudged. Work submitted while a request is served runs in a copy of the submitter's
context, as ``asyncio.to_thread`` does; outside a request nothing changes.

``socket.getaddrinfo`` is the exception: asyncio resolves in the pool and the loop's own
wrapper judges the answer in the task already (see :mod:`rasp.sinks.network`).
"""

from __future__ import annotations

import contextvars
import socket
from typing import Any

from rasp.context import current
from rasp.sinks import Patch
from rasp.sinks._wrapper import Guarded

__all__ = ["PATCHES"]


def _submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args and current() is not None and args[0] is not socket.getaddrinfo:
        args = (contextvars.copy_context().run, *args)
    return wrapped(*args, **kwargs)


PATCHES = (
    Patch("concurrent.futures.thread", "ThreadPoolExecutor.submit", lambda f: Guarded(f, _submit)),
)
