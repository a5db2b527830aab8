"""WSGI entry point: ``gunicorn shop.wsgi``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
application = get_wsgi_application()  # loads the middleware (and with it the agent), then:

from shop.models import create_schema  # noqa: E402

create_schema()
