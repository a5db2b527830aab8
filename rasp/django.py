"""Django, the usual way: ``"rasp.django.RaspMiddleware"`` first in ``MIDDLEWARE``.

Settings come from ``settings.RASP`` (a dict of the agent's settings, e.g.
``{"mode": "monitor"}``), then the ``RASP_*`` environment and ``[tool.rasp]``. A bad key or
value in ``settings.RASP`` raises ``ImproperlyConfigured`` naming it when Django loads the
middleware (start-up); a bad ``RASP_*`` variable or ``[tool.rasp]`` entry raises
:class:`rasp.ConfigError` naming its own source, as everywhere else.

``rasp.protect()`` (and so ``rasp run``) already serves Django's WSGI and ASGI handlers
inside the agent's middleware, which sets the request context; this middleware then only
labels the request with Django's URL pattern (``/products/<int:pk>``) and turns a blocked
call into the 403 answer as a Django response, so Django's own ending of the request
(``request_finished``, closing database connections) still runs. Where no context is set
(Django's test client, a server that calls the handler some other way) it sets one up
itself from the request: Django's parsed query, cookies, form fields and file names, the
body as the app reads it (JSON, form, multipart), headers and the URL's keyword arguments.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings  # type: ignore[import-untyped, import-not-found, unused-ignore]
from django.core.exceptions import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    ImproperlyConfigured,
)
from django.http import HttpResponse  # type: ignore[import-untyped, import-not-found, unused-ignore]

from rasp.config import Config, ConfigError, Mode
from rasp.context import _CURRENT, BodyCapture, RequestContext, UserInput, current
from rasp.guard import active_config, contained
from rasp.middleware._response import blocked_response
from rasp.middleware.wsgi import _CapturingInput, _finish
from rasp.report import metrics
from rasp.sources import collect_inputs

__all__ = ["RaspMiddleware"]

_SETTINGS = frozenset(f.name for f in dataclasses.fields(Config)) - {"origins"}
_lock = threading.Lock()
_started = False


class RaspMiddleware:
    """Django middleware, sync and async: ``MIDDLEWARE = ["rasp.django.RaspMiddleware", ...]``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        _start()
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)
        # Given in the handler's own mode: Django would run a sync hook of an async chain
        # in a thread, a hop per request.
        self.process_view = _route_async if self._is_async else _route

    def __call__(self, request: Any) -> Any:
        if self._is_async:
            return self._serve_async(request)
        context, token, early = _begin(request)
        if context is None:
            return early if early is not None else self.get_response(request)
        try:
            response = self.get_response(request)
        except BaseException:
            if context.blocked is None:
                _end_failed(context, token)
                raise
            response = None
        finally:
            if token is not None:
                _CURRENT.reset(token)
        return _settle(request, context, token is not None, response)

    async def _serve_async(self, request: Any) -> Any:
        context, token, early = _begin(request)
        if context is None:
            return early if early is not None else await self.get_response(request)
        try:
            response = await self.get_response(request)
        except BaseException:
            if context.blocked is None:
                _end_failed(context, token)
                raise
            response = None
        finally:
            if token is not None:
                _CURRENT.reset(token)
        return _settle(request, context, token is not None, response)


def _start() -> None:
    """Protect the process once, with ``settings.RASP`` over the environment and file."""
    global _started
    import rasp

    with _lock:
        if _started:
            return
        chosen = _settings(getattr(settings, "RASP", None))
        # ``rasp run`` protected the process already: keep its settings unless Django adds.
        rasp._ensure_protected(None, chosen)
        _started = True


def _settings(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"settings.RASP must be a dict of the agent's settings, such as "
            f"{{'mode': 'monitor'}}, not {type(value).__name__}"
        )
    for key, item in value.items():
        if key not in _SETTINGS:
            raise ImproperlyConfigured(
                f"settings.RASP: unknown setting {key!r}; known settings: "
                f"{', '.join(sorted(_SETTINGS))}"
            )
        try:
            Config(**{key: item})
        except ConfigError as error:
            reason = str(error).partition(" is not valid: ")[2] or str(error)
            raise ImproperlyConfigured(
                f"settings.RASP[{key!r}]={item!r} is not valid: {reason}"
            ) from None
    return dict(value)


def _begin(request: Any) -> tuple[RequestContext | None, Any, Any]:
    """The request's context, the token if this middleware set it, or an early answer."""
    config = active_config()
    if config.mode is Mode.OFF:
        return None, None, None
    context = current()
    if context is not None:  # the handler's entry point set it: Django adds the route
        return context, None, None
    if config.metrics_path is not None and request.path_info == config.metrics_path:
        return None, None, _metrics_response()
    context = contained("django_context", _new_context, request, config)
    if context is None:
        return None, None, None
    return context, _CURRENT.set(context), None


def _end_failed(context: RequestContext, token: Any) -> None:
    if token is not None:  # our own context: the request ends here, with the app's error
        _finish(context)


def forbidden(request: Any, incident: Any) -> Any:
    """The 403 answer to a blocked request, as a Django response."""
    accept = request.headers.get("Accept", "") if request is not None else ""
    status, headers, body = blocked_response(incident, accept)
    response = HttpResponse(body, status=int(status.split(" ", 1)[0]))
    for name, value in headers:
        response[name] = value
    return response


def _settle(request: Any, context: RequestContext, own: bool, response: Any) -> Any:
    if context.blocked is not None:
        # The app's own answer (a 200 after it swallowed the block, a 500 after it turned
        # it into an error of its own) is dropped for the 403.
        response = forbidden(request, context.blocked)
        if own:  # else the entry point's middleware answers and counts it
            contained("metrics", metrics.request_blocked)
            _finish(context)
        return response
    if own:
        streamed = getattr(response, "streaming", False)
        if streamed and getattr(response, "file_to_stream", None) is None:
            # Its body runs after this returns: each step with the context, as WSGI does.
            content = response.streaming_content
            stepped = _steps_async if hasattr(content, "__aiter__") else _steps
            response.streaming_content = stepped(context, content)
        else:
            _finish(context)
    return response


def _steps(context: RequestContext, chunks: Iterable[bytes]) -> Iterator[bytes]:
    iterator = iter(chunks)
    try:
        while True:
            token = _CURRENT.set(context)
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            finally:
                _CURRENT.reset(token)
            yield chunk  # a block after the headers went out ends the response with its error
    finally:
        _finish(context)


async def _steps_async(
    context: RequestContext, chunks: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    try:
        while True:
            token = _CURRENT.set(context)
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            finally:
                _CURRENT.reset(token)
            yield chunk
    finally:
        _finish(context)


def _route(request: Any, view: Any, args: Any, kwargs: Any) -> None:
    context = current()
    route = getattr(getattr(request, "resolver_match", None), "route", None)
    if context is not None and isinstance(route, str):
        context.route = "/" + route.lstrip("^").rstrip("$")  # as rasp.entrypoints labels it


async def _route_async(request: Any, view: Any, args: Any, kwargs: Any) -> None:
    _route(request, view, args, kwargs)


def _metrics_response() -> Any:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from rasp.middleware._metrics import metrics_registry

    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)


def _new_context(request: Any, config: Config) -> RequestContext:
    body = BodyCapture(config.body_limit)
    read = request.__dict__.get("_body")
    if isinstance(read, bytes):  # a middleware before this one read it
        body.add(read)
    elif getattr(request, "_stream", None) is not None:
        # Django reads the body (``body``, ``POST``, ``read()``) through ``_stream``: a copy
        # is kept as it is read, so inputs follow what the app has read, never ahead.
        request._stream = _CapturingInput(request._stream, body)
    return RequestContext(request.method or "GET", request.path_info, _collect, body, request)


def _collect(context: RequestContext) -> list[UserInput]:
    request: Any = context.raw
    inputs = [UserInput("query", key, value) for key, values in request.GET.lists()
              for value in values]  # fmt: skip
    headers = [(name.lower(), value) for name, value in request.headers.items()]
    headers = [(name, value) for name, value in headers if name != "cookie"]
    match = getattr(request, "resolver_match", None)
    # Path segments and the URL's keyword arguments, headers, and the body as read.
    content_type = request.META.get("CONTENT_TYPE", "")
    params = getattr(match, "kwargs", None)
    inputs.extend(collect_inputs(context, b"", headers, content_type, params))
    inputs.extend(UserInput("cookie", key, value) for key, value in request.COOKIES.items())
    # What Django parsed of the body, once the app asked for it (never parsed here first).
    post, files = request.__dict__.get("_post"), request.__dict__.get("_files")
    if post is not None:
        inputs.extend(UserInput("body", key, value) for key, values in post.lists()
                      for value in values if isinstance(value, str))  # fmt: skip
    if files is not None:
        inputs.extend(UserInput("file", key, str(upload.name)) for key, uploads in files.lists()
                      for upload in uploads)  # fmt: skip
    limit = active_config().max_inputs
    if len(inputs) > limit:
        metrics.inputs_skipped("too_many_inputs", len(inputs) - limit)
        del inputs[limit:]
    return inputs
