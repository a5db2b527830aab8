"""Pure WSGI middleware: the request context for the whole response, and the 403 answer.

The app's ``start_response`` is held back until the first non-empty body chunk, so a block
that happens while the app is still working (even inside an ``except Exception`` that hides
it) turns the answer into a 403 before any header leaves. A block after the headers went out
ends the response with an error, so the server drops the connection without sending more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from rasp.config import Config, Mode
from rasp.context import _CURRENT, BodyCapture, RequestContext
from rasp.guard import active_config, contained
from rasp.middleware._response import blocked_response
from rasp.report import alerts, metrics
from rasp.sources import wsgi_context

__all__ = ["ENVIRON_KEY", "WSGIMiddleware"]

ENVIRON_KEY = "rasp.context"
"""Set in the environ by the outermost agent layer: a layer that finds it passes through."""

_log = logging.getLogger(__name__)

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class WSGIMiddleware:
    """Protect a WSGI app: ``app = rasp.WSGIMiddleware(app)`` (or ``rasp.wsgi(app)``)."""

    def __init__(self, app: WSGIApp, /, config: Config | None = None, **settings: Any) -> None:
        from rasp import _ensure_protected

        _ensure_protected(config, settings)
        self.app = app
        self._metrics_app: WSGIApp | None = None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        config = active_config()
        if config.mode is Mode.OFF or ENVIRON_KEY in environ:
            return self.app(environ, start_response)
        if config.metrics_path is not None and environ.get("PATH_INFO") == config.metrics_path:
            return self._serve_metrics(environ, start_response)
        context = contained("wsgi_context", _new_context, environ, config)
        if context is None:
            return self.app(environ, start_response)
        environ[ENVIRON_KEY] = context
        response = _Response(start_response, context)
        # The context is set only while the app's code runs (here, then in each step of the
        # body and its close), so a server that never closes a response cannot leak it.
        token = _CURRENT.set(context)
        try:
            app_iter: Iterable[bytes] | None = self.app(environ, response.start_response)
        except BaseException:
            if context.blocked is None:
                _finish(context)
                raise
            app_iter = None
        finally:
            _CURRENT.reset(token)
        return _Body(app_iter, response, context, environ)

    def _serve_metrics(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self._metrics_app is None:
            from prometheus_client import make_wsgi_app

            from rasp.middleware._metrics import metrics_registry

            self._metrics_app = make_wsgi_app(metrics_registry())
        return self._metrics_app(environ, start_response)


def _new_context(environ: Environ, config: Config) -> RequestContext:
    body = BodyCapture(config.body_limit)
    stream = environ.get("wsgi.input")
    if stream is not None:
        environ["wsgi.input"] = _CapturingInput(stream, body)
    return wsgi_context(environ, body)


class _CapturingInput:
    """``wsgi.input`` that keeps a copy of what the app reads, never reading ahead."""

    __slots__ = ("_body", "_stream")

    def __init__(self, stream: Any, body: BodyCapture) -> None:
        self._stream = stream
        self._body = body

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self._body.add(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self._body.add(data)
        return data

    def readinto(self, buffer: Any) -> int | None:
        count: int | None = self._stream.readinto(buffer)
        if count:
            self._body.add(bytes(memoryview(buffer)[:count]))
        return count

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        for line in lines:
            self._body.add(line)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._body.add(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Response:
    """Holds the app's status and headers until the first body byte (or a block)."""

    __slots__ = (
        "_context",
        "_real_write",
        "_start_response",
        "exc_info",
        "headers",
        "sent",
        "status",
    )

    def __init__(self, start_response: StartResponse, context: RequestContext) -> None:
        self._start_response = start_response
        self._context = context
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.exc_info: ExcInfo | None = None
        self.sent = False
        self._real_write: Callable[[bytes], object] | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers, self.exc_info = status, headers, exc_info
        return self._write

    def send_headers(self) -> None:
        self.send(self.status or "500 Internal Server Error", self.headers, self.exc_info)

    def send(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.sent = True
        self._real_write = self._start_response(status, headers, exc_info)

    def _write(self, data: bytes) -> object:
        # The legacy write() callable: the headers must go out now, unless a block (that the
        # app may have swallowed) already replaced this answer with the 403.
        if self._context.blocked is not None:
            if self.sent:
                raise RuntimeError("rasp: attack blocked after the response started; aborted")
            return None
        if not self.sent:
            self.send_headers()
        assert self._real_write is not None
        return self._real_write(data)


class _Body:
    """The response iterable: runs each step of the app's body with the context set."""

    def __init__(
        self,
        app_iter: Iterable[bytes] | None,
        response: _Response,
        context: RequestContext,
        environ: Environ,
    ) -> None:
        self._app_iter = app_iter
        self._response = response
        self._context = context
        self._environ = environ
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        context, response = self._context, self._response
        if context.blocked is None and self._app_iter is not None:
            chunks = iter(self._app_iter)
            while True:
                token = _CURRENT.set(context)
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except BaseException:
                    if context.blocked is None:
                        raise
                    break
                finally:
                    _CURRENT.reset(token)
                if context.blocked is not None:
                    break
                if chunk:
                    if not response.sent:
                        response.send_headers()
                    yield chunk
        if context.blocked is not None:
            if response.sent:
                raise RuntimeError("rasp: attack blocked after the response started; aborted")
            yield self._blocked_body()
        elif not response.sent:
            response.send_headers()

    def _blocked_body(self) -> bytes:
        incident = self._context.blocked
        assert incident is not None
        self._close_app_iter()
        status, headers, body = blocked_response(incident, self._environ.get("HTTP_ACCEPT", ""))
        self._response.send(status, headers)
        contained("metrics", metrics.request_blocked)
        return body

    def _close_app_iter(self) -> None:
        app_iter, self._app_iter = self._app_iter, None
        close = getattr(app_iter, "close", None)
        if close is not None:
            token = _CURRENT.set(self._context)
            try:
                close()
            finally:
                _CURRENT.reset(token)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._close_app_iter()
        finally:
            _finish(self._context)


def _finish(context: RequestContext) -> None:
    context.finished = True
    body = context.body
    if body is not None and body.overflowed:
        contained("metrics", metrics.inputs_skipped, "body_too_large")
    contained("metrics", metrics.request_finished, context.checks, context.check_ns)
    contained("alerts", alerts.tick)
