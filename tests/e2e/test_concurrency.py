"""Attacks and honest requests at once: each request is judged on its own input only."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from .conftest import Shop

REQUESTS = 200
PRODUCTS = {1: "Desk lamp", 2: "Tea kettle", 3: "Notebook", 4: "Fountain pen"}


def _attack(i: int) -> tuple[str, str, dict[str, Any], str]:
    """Request i's attack: method, path, request arguments, and the injected value."""
    choice = i % 5
    if choice == 0:
        value = f"' OR '{i}'='{i}"
        return "GET", "/products", {"params": {"name": value}}, value
    if choice == 1:
        value = f"x{i}'; DELETE FROM canary; --"
        return "POST", "/newsletter/unsubscribe", {"data": {"email": value}}, value
    if choice == 2:
        value = f"' OR {i}={i} --"
        return "POST", "/api/users/lookup", {"json": {"user": {"name": value}}}, value
    if choice == 3:
        value = f"{i} OR 1=1"
        return "GET", f"/products/{value}", {}, value
    value = f"admin{i}'--"
    return "POST", "/login", {"data": {"user": value, "password": "x"}}, value


def _check_attack(i: int, response: httpx.Response, blocked: dict[str, str]) -> None:
    assert response.status_code == 403, (i, response.text)
    incident = response.headers["x-rasp-incident"]
    assert response.json()["incident_id"] == incident
    assert incident not in blocked
    blocked[incident] = _attack(i)[3]


def _honest(i: int) -> tuple[str, str, dict[str, Any]]:
    choice = i % 4
    if choice == 0:
        return "GET", "/products", {"params": {"name": "lamp"}}
    if choice == 1:
        return "GET", f"/products/{i % 4 + 1}", {}
    if choice == 2:
        return "POST", "/login", {"data": {"user": "alice", "password": "wonderland"}}
    review = {"author": f"O'Brien {i}", "body": f"I'd select it again; don't drop it ({i})"}
    return "POST", "/products/3/reviews", {"json": review}


def _check_honest(i: int, response: httpx.Response) -> None:
    _, path, _ = _honest(i)
    assert response.status_code == (201 if path.endswith("reviews") else 200), (i, response.text)
    body = response.json()
    if path == "/products":
        assert [p["name"] for p in body] == ["Desk lamp"]
    elif path == "/login":
        assert body == {"logged_in": True, "user": "alice"}
    elif path.endswith("reviews"):
        assert isinstance(body["id"], int)
    else:
        assert body["name"] == PRODUCTS[i % 4 + 1]


def _check_alerts(shop: Shop, offset: int, blocked: dict[str, str]) -> None:
    # One alert per attack, and each names the value of its own request, never another's.
    alerts = {a["id"]: a for a in shop.alerts(offset)}
    assert len(alerts) == len(blocked)
    for incident, value in blocked.items():
        assert alerts[incident]["input_value"] == value
    assert shop.canary() == shop.seeded_canary


def test_threads_against_gunicorn_gthread(flask_gthread_shop: Shop) -> None:
    shop = flask_gthread_shop
    offset = shop.stderr_size()

    def one(client: httpx.Client, i: int) -> httpx.Response:
        method, path, arguments = _attack(i)[:3] if i % 2 else _honest(i)
        return client.request(method, path, **arguments)

    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with shop.client(limits=limits) as client, ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda i: one(client, i), range(REQUESTS)))

    blocked: dict[str, str] = {}
    for i, response in enumerate(responses):
        if i % 2:
            _check_attack(i, response, blocked)
        else:
            _check_honest(i, response)
    assert len(blocked) == REQUESTS // 2
    _check_alerts(shop, offset, blocked)


def test_asyncio_tasks_against_uvicorn(starlette_shop: Shop) -> None:
    shop = starlette_shop
    offset = shop.stderr_size()

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=shop.url, timeout=30.0, limits=limits) as client:
            requests = []
            for i in range(REQUESTS):
                method, path, arguments = _attack(i)[:3] if i % 2 else _honest(i)
                requests.append(client.request(method, path, **arguments))
            return list(await asyncio.gather(*requests))

    responses = asyncio.run(run())

    blocked: dict[str, str] = {}
    for i, response in enumerate(responses):
        if i % 2:
            _check_attack(i, response, blocked)
        else:
            _check_honest(i, response)
    assert len(blocked) == REQUESTS // 2
    _check_alerts(shop, offset, blocked)
