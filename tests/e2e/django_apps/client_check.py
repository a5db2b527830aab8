"""Django's test client (sync and async) on examples/django_shop with the agent's
middleware: its handlers are not the WSGI/ASGI entry points the agent wraps, so the
middleware sets the request context itself. Prints one JSON object: name -> [status,
incident id or null]."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings_rasp")

import django

django.setup()

from django.test import AsyncClient, Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from shop.models import create_schema  # noqa: E402

setup_test_environment()  # allows the clients' host, "testserver"
create_schema()
UNION = "x' UNION SELECT id, secret, secret, 0 FROM canary --"


def _result(response: Any) -> list[Any]:
    return [response.status_code, response.get("X-Rasp-Incident")]


async def _async_results() -> dict[str, list[Any]]:
    client = AsyncClient()
    return {
        "async_attack": _result(await client.get("/products", {"name": UNION})),
        "async_honest": _result(await client.get("/products", {"name": "lamp"})),
        "async_form": _result(await client.post("/login", {"user": "admin'--", "password": ""})),
    }


client = Client()
results = {
    "attack": _result(client.get("/products", {"name": UNION})),
    "honest": _result(client.get("/products", {"name": "lamp"})),
    "raw": _result(client.get("/products/0 UNION SELECT id, secret, secret, 0 FROM canary")),
    "form": _result(client.post("/login", {"user": "admin'--", "password": ""})),
    "json": _result(
        client.post("/api/users/lookup", {"user": {"name": UNION}}, "application/json")
    ),
    "honest_json": _result(
        client.post("/api/users/lookup", {"user": {"name": "alice"}}, "application/json")
    ),
    **asyncio.run(_async_results()),
}
print(json.dumps(results))
