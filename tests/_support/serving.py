"""A request being served, as the middleware sets it up, for the in-process sink tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from rasp.context import _CURRENT, RequestContext
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
