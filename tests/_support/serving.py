"""A request being served, for the in-process tests: as the middleware sets it up from a
query string, or with the inputs given as they are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from rasp.context import _CURRENT, RequestContext, UserInput
from rasp.sources import wsgi_context


@contextmanager
def serving(path: str = "/", **query: str) -> Iterator[RequestContext]:
    """Serve a GET request whose query string holds ``query``."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": urlencode(query)}
    context = wsgi_context(environ, None)
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


@contextmanager
def in_request(method: str, path: str, *inputs: UserInput) -> Iterator[RequestContext]:
    """Serve a request whose inputs are ``inputs``, taken as they are (no parsing)."""
    context = RequestContext(method, path, lambda _c: list(inputs))
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)
