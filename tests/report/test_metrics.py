"""Prometheus metrics: route templates as labels, per-request check metrics, agent info,
and the three ways to expose them."""

from __future__ import annotations

import sqlite3
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from servers import free_port

import rasp
from rasp.report import metrics

ATTACK = "1 OR 1=1"


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def agent() -> Iterator[rasp.Config]:
    config = rasp.protect(rasp.Config(alert_window=0))
    yield config
    rasp.unprotect()


def _flask(db_path: Path) -> Any:
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)

    @app.get("/items/<item_id>")
    def item(item_id: str) -> Any:
        with sqlite3.connect(db_path) as db:
            db.execute("SELECT 1")  # a second guarded call in the same request
            return {"rows": db.execute(f"SELECT * FROM items WHERE id = {item_id}").fetchall()}

    app.wsgi_app = rasp.wsgi(app.wsgi_app)  # type: ignore[method-assign]
    return _ClosingClient(app.test_client())


class _ClosingClient:
    """Werkzeug's test client leaves the response open; a server closes it (PEP 3333),
    which ends the request for the agent."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        response.close()
        return response


def _starlette(db_path: Path) -> Any:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def item(request: Any) -> JSONResponse:
        with sqlite3.connect(db_path) as db:
            db.execute("SELECT 1")
            query = f"SELECT * FROM items WHERE id = {request.path_params['item_id']}"
            return JSONResponse({"rows": db.execute(query).fetchall()})

    app = Starlette(routes=[Route("/items/{item_id}", item)])
    return _AsgiClient(rasp.asgi(app))


class _AsgiClient:
    """``client.get(path)`` over httpx's ASGI transport, as the Flask test client does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def get(self, path: str) -> Any:
        import asyncio

        import httpx

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.get(path)

        return asyncio.run(go())


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "items.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE items (id INTEGER)")
    return path


@pytest.mark.parametrize(
    ("make", "template"), [(_flask, "/items/<item_id>"), (_starlette, "/items/{item_id}")]
)
def test_attacks_are_labelled_with_the_route_template(
    agent: rasp.Config, db_path: Path, make: Callable[[Path], Any], template: str
) -> None:
    client = make(db_path)
    labels = {"kind": "sql_injection", "sink": "sqlite3", "action": "blocked", "route": template}
    before = _value("rasp_attacks_total", **labels)
    assert client.get(f"/items/{ATTACK}").status_code == 403
    assert client.get("/items/1%20OR%202=2").status_code == 403
    assert _value("rasp_attacks_total", **labels) == before + 2
    # The label is the template, never the request's own path.
    families = {f.name: f for f in text_string_to_metric_families(_exposition())}
    routes = {s.labels["route"] for s in families["rasp_attacks"].samples}
    assert not any("OR" in route for route in routes)


def test_a_request_no_route_matched_is_unknown(agent: rasp.Config) -> None:
    db = sqlite3.connect(":memory:")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        db.execute(f"SELECT {environ['QUERY_STRING'].partition('=')[2]}")
        start_response("200 OK", [])
        return [b"ok"]

    labels = {"kind": "sql_injection", "sink": "sqlite3", "action": "blocked", "route": "unknown"}
    before = _value("rasp_attacks_total", **labels)
    assert _call_wsgi(rasp.wsgi(app), "q=1;DROP TABLE x").startswith("403")
    assert _value("rasp_attacks_total", **labels) == before + 1
    db.close()


def _call_wsgi(app: Any, query: str) -> str:
    status: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": query}
    body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    del body
    return status[0]


@pytest.mark.parametrize("make", [_flask, _starlette])
def test_each_request_counts_its_checks_and_their_time(
    agent: rasp.Config, db_path: Path, make: Callable[[Path], Any]
) -> None:
    client = make(db_path)
    requests = _value("rasp_requests_total")
    checks = _value("rasp_sink_checks_total", sink="sqlite3")
    timed = _value("rasp_check_duration_seconds_count", kind="sql_injection")
    assert client.get("/items/7").status_code == 200
    assert _value("rasp_requests_total") == requests + 1
    assert _value("rasp_sink_checks_total", sink="sqlite3") == checks + 2  # two statements
    # One observation per request and kind: the time of both checks together.
    assert _value("rasp_check_duration_seconds_count", kind="sql_injection") == timed + 1
    assert _value("rasp_check_duration_seconds_sum", kind="sql_injection") > 0


def test_the_agent_info_series_names_version_mode_and_sinks() -> None:
    rasp.protect(rasp.Config(mode="monitor"))
    try:
        rasp.protect(rasp.Config(mode="block"))
        samples = [
            s
            for f in text_string_to_metric_families(_exposition())
            if f.name == "rasp_agent_info"
            for s in f.samples
        ]
        live = [s for s in samples if s.value == 1]
        assert len(live) == 1
        assert live[0].labels["mode"] == "block"
        assert live[0].labels["version"] == rasp.__version__
        assert {"sqlite", "process", "files", "network"} <= set(live[0].labels["sinks"].split(","))
        assert not any(s.labels["mode"] == "monitor" and s.value == 1 for s in samples)
    finally:
        rasp.unprotect()


def test_metric_names_follow_prometheus_conventions() -> None:
    # Family names, as prometheus_client keeps them: counters get _total when exposed.
    assert set(metrics.registry_names()) == {
        "rasp_attacks", "rasp_requests", "rasp_requests_blocked", "rasp_sink_checks",
        "rasp_check_duration_seconds", "rasp_inputs_skipped", "rasp_internal_errors",
        "rasp_alerts", "rasp_alerts_suppressed", "rasp_agent_info",
    }  # fmt: skip
    for family in text_string_to_metric_families(_exposition()):
        if family.name.startswith("rasp_") and family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)


def test_the_check_duration_buckets_resolve_microseconds() -> None:
    assert metrics.CHECK_DURATION_BUCKETS[0] <= 1e-6
    assert sum(1 for bound in metrics.CHECK_DURATION_BUCKETS if bound <= 1e-4) >= 6


def test_metrics_port_serves_the_registry() -> None:
    port = free_port()
    rasp.protect(rasp.Config(metrics_port=port))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        assert "rasp_agent_info{" in text
        # A second protect() in the same process does not try to bind it again.
        rasp.protect(rasp.Config(metrics_port=port))
    finally:
        rasp.unprotect()


def test_a_bad_metrics_port_fails_at_start_up() -> None:
    with pytest.raises(rasp.ConfigError, match="RASP_METRICS_PORT='http'"):
        rasp.Config.load(environ={"RASP_METRICS_PORT": "http"})


def _exposition() -> str:
    from prometheus_client import generate_latest

    return generate_latest(REGISTRY).decode()


def test_routes_inside_a_mount_carry_the_mount(agent: rasp.Config, db_path: Path) -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    async def item(request: Any) -> JSONResponse:
        with sqlite3.connect(db_path) as db:
            query = f"SELECT * FROM items WHERE id = {request.path_params['item_id']}"
            return JSONResponse({"rows": db.execute(query).fetchall()})

    inner = [Route("/items/{item_id}", item)]
    app = Starlette(routes=[Mount("/admin", routes=inner), Mount("/public", routes=inner)])
    client = _AsgiClient(app)  # no middleware: protect() wrapped Starlette itself
    for mount in ("admin", "public"):
        labels = {"kind": "sql_injection", "sink": "sqlite3", "action": "blocked",
                  "route": f"/{mount}/items/{{item_id}}"}  # fmt: skip
        before = _value("rasp_attacks_total", **labels)
        assert client.get(f"/{mount}/items/{ATTACK}").status_code == 403
        assert _value("rasp_attacks_total", **labels) == before + 1
