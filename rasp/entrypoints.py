"""The request context without code changes: the frameworks' and servers' own WSGI and ASGI
entry points wrapped in the agent's middleware when they are imported.

``rasp.protect()`` (and so ``rasp run``) installs these with the sinks: a Flask app's
``wsgi_app``, Django's WSGI and ASGI handlers and a Starlette (FastAPI) app's ``__call__``
serve each request inside :class:`~rasp.middleware.wsgi.WSGIMiddleware` or
:class:`~rasp.middleware.asgi.ASGIMiddleware`, and so does any app gunicorn or uvicorn
loads (``BaseApplication.wsgi``, ``Config.load``), framework or not. An app that also added
the middleware by hand is not wrapped twice: the outer one sets the request context and
every inner one passes the request through. Django's route pattern is taken from its
resolver for the metrics label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rasp import sinks
from rasp.context import current
from rasp.middleware.wsgi import ENVIRON_KEY
from rasp.sinks import Patch
from rasp.sinks._wrapper import Guarded

__all__ = ["PATCHES"]


def _wsgi_entry(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # Flask.wsgi_app(self, environ, start_response), WSGIHandler.__call__(self, environ, ...).
    # ``wrapped`` is the original, bound: the middleware serves it, made for this request
    # (nothing kept per app: no reference that would keep an app alive, no hashing).
    environ = args[0] if args else kwargs.get("environ")
    if not sinks._active or not isinstance(environ, dict) or ENVIRON_KEY in environ:
        return wrapped(*args, **kwargs)
    from rasp.middleware.wsgi import WSGIMiddleware

    return WSGIMiddleware(wrapped)(*args, **kwargs)


def _asgi_entry(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # Starlette.__call__(self, scope, receive, send), ASGIHandler.__call__(self, scope, ...).
    # Not a coroutine function itself: a call with the wrong arguments raises at once, as
    # the original does (uvicorn calls the app with none to tell a factory from an app).
    scope = args[0] if args else kwargs.get("scope")
    if not sinks._active or not isinstance(scope, Mapping) or current() is not None:
        return wrapped(*args, **kwargs)
    from rasp.middleware.asgi import ASGIMiddleware

    return ASGIMiddleware(wrapped)(*args, **kwargs)


def _django_resolved(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # BaseHandler.resolve_request(self, request) -> ResolverMatch; its ``route`` is the
    # pattern (``items/<int:pk>/``), the metrics label of the request.
    match = wrapped(*args, **kwargs)
    context = current()
    route = getattr(match, "route", None)
    if context is not None and isinstance(route, str):
        context.route = "/" + route.lstrip("^").rstrip("$")
    return match


def _django_response(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # BaseHandler.get_response(self, request): a block raised through Django becomes the
    # 403 as a Django response, so Django ends the request as usual (response.close(),
    # request_finished, database connections closed) instead of seeing an exception.
    try:
        return wrapped(*args, **kwargs)
    except BaseException:
        response = _django_blocked(args[0] if args else kwargs.get("request"))
        if response is None:
            raise
        return response


async def _django_response_async(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    except BaseException:
        response = _django_blocked(args[0] if args else kwargs.get("request"))
        if response is None:
            raise
        return response


def _django_blocked(request: Any) -> Any:
    context = current()
    if context is None or context.blocked is None:
        return None
    from rasp.django import forbidden

    return forbidden(request, context.blocked)


def _gunicorn_app(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # BaseApplication.wsgi(self) -> the app a worker serves: any WSGI app, framework or not.
    app = wrapped(*args, **kwargs)
    from rasp.middleware.asgi import ASGIMiddleware
    from rasp.middleware.wsgi import WSGIMiddleware

    if app is None or isinstance(app, (WSGIMiddleware, ASGIMiddleware)):
        return app
    interface = _worker_interface(instance)
    if interface == "uvicorn":
        return app  # uvicorn's worker loads it through uvicorn's Config: wrapped there
    wrapped_app: Any = ASGIMiddleware(app) if interface == "asgi" else WSGIMiddleware(app)
    if getattr(instance, "callable", None) is app:
        instance.callable = wrapped_app  # what the next call returns, and the worker keeps
    return wrapped_app


def _worker_interface(application: Any) -> str:
    """What gunicorn's worker serves: ``uvicorn`` (uvicorn's worker, ASGI, loaded by
    uvicorn's Config), ``asgi`` (gunicorn's own ASGI worker) or ``wsgi``."""
    worker_class = str(getattr(getattr(application, "cfg", None), "worker_class_str", "")).lower()
    if "uvicorn" in worker_class:
        return "uvicorn"
    if worker_class == "asgi" or "asgi" in worker_class.rsplit(".", 1)[-1]:
        return "asgi"
    return "wsgi"


def _uvicorn_load(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # Config.load(self) sets self.loaded_app: any ASGI app (or a WSGI one uvicorn adapted).
    result = wrapped(*args, **kwargs)
    from rasp.middleware.asgi import ASGIMiddleware

    app = getattr(instance, "loaded_app", None)
    if app is not None and not isinstance(app, ASGIMiddleware):
        instance.loaded_app = ASGIMiddleware(app)
    return result


def _mount(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # Mount.handle(self, scope, receive, send): the request goes into the mount's app; its
    # path template (``/admin``) prefixes the route found inside.
    context = current()
    path = getattr(instance, "path", None)
    if context is not None and isinstance(path, str):
        context.route_prefix += path
    return wrapped(*args, **kwargs)


def _wrap(entry: Any) -> Any:
    return lambda original: Guarded(original, entry)


PATCHES = (
    Patch("flask.app", "Flask.wsgi_app", _wrap(_wsgi_entry)),
    Patch("django.core.handlers.wsgi", "WSGIHandler.__call__", _wrap(_wsgi_entry)),
    Patch("django.core.handlers.asgi", "ASGIHandler.__call__", _wrap(_asgi_entry)),
    Patch("django.core.handlers.base", "BaseHandler.resolve_request", _wrap(_django_resolved)),
    Patch("django.core.handlers.base", "BaseHandler.get_response", _wrap(_django_response)),
    Patch(
        "django.core.handlers.base",
        "BaseHandler.get_response_async",
        _wrap(_django_response_async),
    ),
    Patch("starlette.applications", "Starlette.__call__", _wrap(_asgi_entry)),
    Patch("starlette.routing", "Mount.handle", _wrap(_mount)),
    # The servers: any app they serve, with or without a framework.
    Patch("gunicorn.app.base", "BaseApplication.wsgi", _wrap(_gunicorn_app)),
    Patch("uvicorn.config", "Config.load", _wrap(_uvicorn_load)),
)
