"""Pure ASGI middleware: the request context, a copy of the body as read, the 403 answer.

The app's `http.response.start` is held back until the first body bytes, as the WSGI side
holds `start_response`, so a block while the app is still working becomes a 403. Once an
attack is blocked, nothing more the app sends reaches the client. If the response
had not started, the client gets the 403; if it had, the middleware raises so the server
closes the connection without sending the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rasp.config import Config, Mode
from rasp.context import _CURRENT, BodyCapture, RequestContext, current
from rasp.guard import active_config, contained
from rasp.middleware._response import blocked_response
from rasp.report import alerts, metrics
from rasp.sources import asgi_context

__all__ = ["ASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ASGIMiddleware:
    """Protect an ASGI app: ``app = rasp.ASGIMiddleware(app)`` (or ``rasp.asgi(app)``)."""

    def __init__(self, app: ASGIApp, /, config: Config | None = None, **settings: Any) -> None:
        from rasp import _ensure_protected

        _ensure_protected(config, settings)
        self.app = app
        self._metrics_app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = active_config()
        if scope["type"] != "http" or config.mode is Mode.OFF or current() is not None:
            await self.app(scope, receive, send)
            return
        if config.metrics_path is not None and scope.get("path") == config.metrics_path:
            await self._serve_metrics(scope, receive, send)
            return
        body = BodyCapture(config.body_limit)
        context: RequestContext | None = contained("asgi_context", asgi_context, scope, body)
        if context is None:
            await self.app(scope, receive, send)
            return
        started = False  # whether anything of the response reached the client
        completed = False  # whether all of it did (then the app runs background tasks)
        held_start: Message | None = None

        async def capturing_receive() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                body.add(message.get("body", b""))
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, completed, held_start
            if context.blocked is not None:
                if started:
                    raise _ResponseAborted
                return  # the app's own answer is replaced by the 403
            if message["type"] == "http.response.start":
                held_start = message  # held until the first body bytes, as in WSGI
                return
            if held_start is not None:
                if not message.get("body") and message.get("more_body", False):
                    return  # an empty chunk changes nothing; keep holding the headers
                start, held_start = held_start, None
                started = True
                await send(start)
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                completed = True

        token = _CURRENT.set(context)
        try:
            try:
                await self.app(scope, capturing_receive, guarded_send)
            except BaseException:
                # However the block surfaced (our exception, an exception group, the app's own
                # error after it caught ours), the request was blocked.
                if context.blocked is None:
                    raise
            if context.blocked is not None:
                if completed:
                    # Blocked in a background task run after the response (Starlette's
                    # BackgroundTasks): the call did not run; nothing is left to abort.
                    return
                if started:
                    raise RuntimeError("rasp: attack blocked after the response started; aborted")
                await self._send_blocked(context, scope, send)
            elif held_start is not None:  # an app that sent headers and no body message
                await send(held_start)
        finally:
            context.finished = True
            _CURRENT.reset(token)
            if body.overflowed:
                contained("metrics", metrics.inputs_skipped, "body_too_large")
            contained("metrics", metrics.request_finished, context.checks, context.check_ns)
            contained("alerts", alerts.tick)

    async def _send_blocked(self, context: RequestContext, scope: Scope, send: Send) -> None:
        assert context.blocked is not None
        accept = ""
        for name, value in scope.get("headers", ()):
            if name.lower() == b"accept":
                accept = value.decode("latin-1")
                break
        status, headers, payload = blocked_response(context.blocked, accept)
        await send(
            {
                "type": "http.response.start",
                "status": int(status.split(" ", 1)[0]),
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        contained("metrics", metrics.request_blocked)

    async def _serve_metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._metrics_app is None:
            from prometheus_client import make_asgi_app

            from rasp.middleware._metrics import metrics_registry

            self._metrics_app = make_asgi_app(metrics_registry())
        await self._metrics_app(scope, receive, send)


class _ResponseAborted(Exception):
    """Raised into the app when it sends after a block: the response must not go on."""
