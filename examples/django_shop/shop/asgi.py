"""ASGI entry point: ``uvicorn shop.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
application = get_asgi_application()  # loads the middleware (and with it the agent), then:

from shop.models import create_schema  # noqa: E402

create_schema()
