"""examples/django_shop with the agent's entry-point wrappers (rasp.entrypoints: Django's
handlers, its resolver, gunicorn's and uvicorn's app loading) put back as they were, so that
only ``rasp.django.RaspMiddleware`` (``shop.settings_rasp``) sets the request context and
labels the route, as it does under Django's test client or a server that calls the handler
another way.

``gunicorn unwrapped:wsgi_app`` and ``uvicorn unwrapped:asgi_app``, without ``rasp run``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings_rasp")

from shop import asgi, wsgi  # the handlers load the middleware, which starts the agent

from rasp.context import current
from rasp.entrypoints import PATCHES

for _patch in PATCHES:
    if _patch.module in sys.modules:
        _owner_name, _name = _patch.attribute.split(".")
        _owner = getattr(importlib.import_module(_patch.module), _owner_name)
        _original = getattr(vars(_owner).get(_name), "__wrapped__", None)
        if _original is not None:
            setattr(_owner, _name, _original)


def _no_context_yet() -> None:
    # Proof that the middleware is on its own here: no wrapper around this app set one.
    if current() is not None:
        raise RuntimeError("a request context was set before Django's handler")


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    _no_context_yet()
    return wsgi.application(environ, start_response)


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    _no_context_yet()
    await asgi.application(scope, receive, send)
