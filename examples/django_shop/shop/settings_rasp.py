"""The shop with the agent as Django middleware: first in ``MIDDLEWARE``, so it sees what
every other middleware and view does. ``RASP`` holds the agent's settings; ``RASP_*``
environment variables and ``[tool.rasp]`` fill in the rest."""

from __future__ import annotations

from shop.settings import *  # noqa: F403
from shop.settings import MIDDLEWARE

MIDDLEWARE = ["rasp.django.RaspMiddleware", *MIDDLEWARE]
RASP = {"mode": "block"}
