"""The request context without code changes: the frameworks' own WSGI and ASGI entry points
wrapped in the agent's middleware when they are imported.

``rasp.protect()`` (and so ``rasp run``) installs these with the sinks: a Flask app's
``wsgi_app``, Django's WSGI and ASGI handlers and a Starlette (FastAPI) app's ``__call__``
serve each request inside :class:`~rasp.middleware.wsgi.WSGIMiddleware` or
:class:`~rasp.middleware.asgi.ASGIMiddleware`. An app that also added the middleware by hand
is not wrapped twice: the outer one sets the request context and every inner one passes the
request through. Django's route pattern is taken from its resolver for the metrics label.
"""

from __future__ import annotations

import weakref
from functools import partial
from typing import Any

from rasp.context import current
from rasp.sinks import Patch
from rasp.sinks._wrapper import Guarded

__all__ = ["PATCHES"]

_ENVIRON_KEY = "rasp.context"  # as set by the WSGI middleware
_wsgi_middlewares: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_asgi_middlewares: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _wsgi_entry(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # Flask.wsgi_app(self, environ, start_response), WSGIHandler.__call__(self, environ, ...)
    environ = args[0] if args else kwargs.get("environ")
    if instance is None or not isinstance(environ, dict) or _ENVIRON_KEY in environ:
        return wrapped(*args, **kwargs)
    middleware = _wsgi_middlewares.get(instance)
    if middleware is None:
        from rasp.middleware.wsgi import WSGIMiddleware

        middleware = WSGIMiddleware(partial(wrapped.__func__, instance))
        _wsgi_middlewares[instance] = middleware
    return middleware(*args, **kwargs)


async def _asgi_entry(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    # Starlette.__call__(self, scope, receive, send), ASGIHandler.__call__(self, scope, ...)
    scope = args[0] if args else kwargs.get("scope")
    if instance is None or not isinstance(scope, dict) or current() is not None:
        return await wrapped(*args, **kwargs)
    middleware = _asgi_middlewares.get(instance)
    if middleware is None:
        from rasp.middleware.asgi import ASGIMiddleware

        middleware = ASGIMiddleware(partial(wrapped.__func__, instance))
        _asgi_middlewares[instance] = middleware
    return await middleware(*args, **kwargs)


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


def _wrap(entry: Any) -> Any:
    return lambda original: Guarded(original, entry)


PATCHES = (
    Patch("flask.app", "Flask.wsgi_app", _wrap(_wsgi_entry)),
    Patch("django.core.handlers.wsgi", "WSGIHandler.__call__", _wrap(_wsgi_entry)),
    Patch("django.core.handlers.asgi", "ASGIHandler.__call__", _wrap(_asgi_entry)),
    Patch("django.core.handlers.base", "BaseHandler.resolve_request", _wrap(_django_resolved)),
    Patch("starlette.applications", "Starlette.__call__", _wrap(_asgi_entry)),
)
