"""examples/django_shop over real HTTP: gunicorn (WSGI, 2 sync workers) and uvicorn (ASGI).

Three setups on each server: ``rasp run`` with no agent code in the project; the explicit
``rasp.django.RaspMiddleware`` (settings_rasp), which protects the process itself; and that
middleware alone, with the agent's entry-point wrappers bypassed (django_apps/unwrapped.py),
so it sets the request context itself. In each, an attack of every family is answered 403 and
never reaches its target (canary table intact, canary file absent, canary server not hit,
secret not returned), honest requests are served, and ``/metrics`` labels attacks with
Django's URL pattern. Each server starts once per module.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import Server, free_port, running

if TYPE_CHECKING:
    from .conftest import Canary

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "django_shop"
APPS = Path(__file__).resolve().parent / "django_apps"
CANARY_ROWS = [(1, "canary-secret-1"), (2, "canary-secret-2")]
# Every route the attacks below reach, as Django writes its patterns.
ROUTES = {"/products", "/products/<product_id>", "/login", "/api/users/lookup",
          "/recommendations", "/download", "/tools/lookup", "/fetch"}  # fmt: skip
UNION = "x' UNION SELECT id, secret, secret, 0 FROM canary --"

_GUNICORN = ["gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "2", "--log-level", "warning"]
_UVICORN = ["uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
            "--no-access-log"]  # fmt: skip
_RASP_RUN = ["rasp.cli", "run", "--", sys.executable, "-m"]
# id -> (command after ``python -m``, settings module)
SETUPS = {
    "rasp-run-gunicorn": ([*_RASP_RUN, *_GUNICORN, "shop.wsgi"], "shop.settings"),
    "rasp-run-uvicorn": ([*_RASP_RUN, *_UVICORN, "shop.asgi:application"], "shop.settings"),
    "middleware-gunicorn": ([*_GUNICORN, "shop.wsgi"], "shop.settings_rasp"),
    "middleware-uvicorn": ([*_UVICORN, "shop.asgi:application"], "shop.settings_rasp"),
    "middleware-only-gunicorn": ([*_GUNICORN, "unwrapped:wsgi_app"], "shop.settings_rasp"),
    "middleware-only-uvicorn": ([*_UVICORN, "unwrapped:asgi_app"], "shop.settings_rasp"),
}


@dataclass
class DjangoShop(Server):
    workdir: Path

    def alert(self, since: int, incident: str) -> dict[str, Any]:
        """The JSON alert line of ``incident``, written after byte offset ``since``."""
        found = [alert for alert in self.alerts(since) if alert.get("id") == incident]
        assert len(found) == 1, self.stderr()
        return found[0]

    def canary(self) -> list[tuple[int, str]]:
        connection = sqlite3.connect(self.workdir / "shop.db", timeout=30)
        try:
            return connection.execute("SELECT id, secret FROM canary ORDER BY id").fetchall()
        finally:
            connection.close()


def _environment(workdir: Path, settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASP_", "PROMETHEUS_"))}
    env.pop("prometheus_multiproc_dir", None)
    metrics_dir = workdir / "prometheus"
    metrics_dir.mkdir()
    env.update(
        PYTHONPATH=os.pathsep.join([str(SHOP), str(APPS), str(ROOT)]),
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE=settings,
        SHOP_DB=str(workdir / "shop.db"),
        RASP_ALERT_WINDOW="0",  # each attack's own alert line
        RASP_METRICS_PATH="/metrics",
        RASP_SSRF_ALLOW="127.0.0.2",  # the partner server (conftest.TRUSTED_HOST)
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),  # gunicorn's 2 workers add up
    )
    return env


@pytest.fixture(scope="module", params=list(SETUPS))
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DjangoShop]:
    for module in ("django", "gunicorn", "uvicorn"):
        pytest.importorskip(module)
    command, settings = SETUPS[request.param]
    workdir = tmp_path_factory.mktemp(request.param)
    port = free_port()
    shop = DjangoShop(request.param, f"http://127.0.0.1:{port}", workdir / "stderr.log", workdir)
    args = [sys.executable, "-m", *(a.replace("{port}", str(port)) for a in command)]
    # cwd is the temp dir so no pyproject.toml [tool.rasp] of the checkout applies.
    with running(shop, args, workdir, _environment(workdir, settings), "/products/1"):
        yield shop
        # Read before the server stops: a worker told to quit while it closes a response
        # logs gunicorn's own "Error handling request" (SystemExit in handle_quit).
        logged = shop.stderr()
    # No error of the agent's own (fail open, logged) nor an exception out of the app.
    for marker in ("rasp: internal error", "Error handling request", "Exception in ASGI"):
        assert marker not in logged, logged


def _blocked(shop: DjangoShop, since: int, response: httpx.Response, kind: str, source: str,
             route: str) -> dict[str, Any]:  # fmt: skip
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "request_blocked"
    alert = shop.alert(since, response.headers["x-rasp-incident"])
    assert (alert["kind"], alert["action"]) == (kind, "blocked")
    assert (alert["input_source"], alert["route"]) == (source, route)
    assert alert["code_file"].endswith("views.py")
    return alert


SQL_ATTACKS = [
    # (method, url, request arguments, input source, route)
    ("GET", "/products", {"params": {"name": UNION}}, "query.name", "/products"),
    ("GET", "/products", {"params": {"sort": "(SELECT secret FROM canary)"}}, "query.sort",
     "/products"),
    ("GET", "/products/0 UNION SELECT id, secret, secret, 0 FROM canary", {}, "path.1",
     "/products/<product_id>"),
    ("POST", "/login", {"data": {"user": "admin'--", "password": "guess"}}, "body.user", "/login"),
    ("POST", "/api/users/lookup", {"json": {"user": {"name": UNION}}}, "body.user.name",
     "/api/users/lookup"),
    ("GET", "/recommendations", {"params": {"category": "x' OR 1=1 --"}}, "query.category",
     "/recommendations"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "kwargs", "source", "route"), SQL_ATTACKS)
def test_sql_injection_is_blocked_and_never_runs(
    shop: DjangoShop, method: str, url: str, kwargs: dict[str, Any], source: str, route: str
) -> None:
    since = shop.stderr_size()
    with shop.client() as client:
        response = client.request(method, url, **kwargs)
    alert = _blocked(shop, since, response, "sql_injection", source, route)
    assert alert["sink"] == "sqlite3"
    assert "canary-secret" not in response.text
    assert shop.canary() == CANARY_ROWS


def test_honest_sql_input_is_served(shop: DjangoShop) -> None:
    with shop.client() as client:
        search = client.get("/products", params={"name": "lamp", "sort": "price"})
        by_id = client.get("/products/2")
        login = client.post("/login", data={"user": "alice", "password": "wonderland"})
        lookup = client.post("/api/users/lookup", json={"user": {"name": "alice"}})
        review = client.post(
            "/products/1/reviews", data={"author": "O'Brien", "body": "Select it; don't drop it"}
        )
        safe = client.get("/safe/products", params={"name": "' OR 1=1 --"})
    assert [p["name"] for p in search.json()] == ["Desk lamp"]
    assert by_id.json()[0]["name"] == "Tea kettle"
    assert login.json() == {"logged_in": True, "user": "alice"}
    assert lookup.json()[0]["email"] == "alice@shop.example"
    assert review.status_code == 201, review.text
    assert safe.status_code == 200 and safe.json() == []
    assert shop.canary() == CANARY_ROWS


@pytest.mark.parametrize("payload", ["localhost; touch {canary}", "$(touch {canary})",
                                     "localhost\ntouch {canary}"])  # fmt: skip
def test_shell_injection_is_blocked_and_never_runs(shop: DjangoShop, payload: str) -> None:
    canary = shop.workdir / f"pwned-{secrets.token_hex(4)}"
    since = shop.stderr_size()
    with shop.client() as client:
        response = client.get("/tools/lookup", params={"host": payload.format(canary=canary)})
    alert = _blocked(shop, since, response, "shell_injection", "query.host", "/tools/lookup")
    assert alert["sink"] == "subprocess.Popen"
    assert not canary.exists()


def test_honest_shell_input_runs(shop: DjangoShop) -> None:
    canary = shop.workdir / f"pwned-{secrets.token_hex(4)}"
    with shop.client() as client:
        lookup = client.get("/tools/lookup", params={"host": "localhost"})
        safe = client.get("/tools/lookup-safe", params={"host": f"localhost; touch {canary}"})
    assert lookup.status_code == 200, lookup.text
    assert "127.0.0.1" in lookup.json()["output"] or "::1" in lookup.json()["output"]
    assert safe.status_code == 200, safe.text
    assert not canary.exists()


@pytest.mark.parametrize("name", ["../secret.txt", "manuals/../../secret.txt", "{absolute}"])
def test_traversal_is_blocked_and_the_secret_not_returned(shop: DjangoShop, name: str) -> None:
    token = secrets.token_hex(16)
    secret = shop.workdir / "secret.txt"
    secret.write_text(token)
    since = shop.stderr_size()
    with shop.client() as client:
        response = client.get("/download", params={"name": name.format(absolute=secret)})
    alert = _blocked(shop, since, response, "path_traversal", "query.name", "/download")
    assert alert["sink"] == "open"
    assert token not in response.text


FILES = [("report-2024.pdf", "%PDF- yearly report"), ("my..notes.txt", "notes"),
         ("manuals/lamp.txt", "lamp manual"),
         ("manuals/../report-2024.pdf", "%PDF- yearly report")]  # fmt: skip


def test_honest_file_names_are_served(shop: DjangoShop) -> None:
    with shop.client() as client:
        for name, content in FILES:
            response = client.get("/download", params={"name": name})
            assert (response.status_code, response.text) == (200, content)
        assert client.get("/download", params={"name": "nothing.txt"}).status_code == 404


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433"])
def test_ssrf_to_an_internal_server_is_blocked(
    shop: DjangoShop, canary_server: Canary, host: str
) -> None:
    port = canary_server.url.rsplit(":", 1)[1]
    before = list(canary_server.hits)
    since = shop.stderr_size()
    with shop.client() as client:
        response = client.get("/fetch", params={"url": f"http://{host}:{port}/internal"})
    alert = _blocked(shop, since, response, "ssrf", "query.url", "/fetch")
    assert alert["sink"] == "socket.getaddrinfo"
    assert "canary: internal data" not in response.text
    assert canary_server.hits == before


def test_honest_fetch_reaches_an_allowed_server(shop: DjangoShop, partner_server: Canary) -> None:
    path = f"/partner/{secrets.token_hex(4)}"
    with shop.client() as client:
        response = client.get("/fetch", params={"url": partner_server.url + path})
    assert response.status_code == 200, response.text
    assert response.json()["body"] == "canary: internal data"
    assert path in partner_server.hits


def _scrape(client: httpx.Client) -> tuple[dict[tuple[str, str, str], float], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    attacks: dict[tuple[str, str, str], float] = {}
    blocked = 0.0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "rasp_attacks_total":
                labels = sample.labels
                assert labels["route"] in ROUTES, labels  # a pattern, never the raw path
                key = (labels["kind"], labels["sink"], labels["route"])
                attacks[key] = attacks.get(key, 0.0) + sample.value
            elif sample.name == "rasp_requests_blocked_total":
                blocked = sample.value
    return attacks, blocked


def test_metrics_count_attacks_by_django_url_pattern(
    shop: DjangoShop, canary_server: Canary
) -> None:
    attacks = [
        ("/products", {"name": UNION}, ("sql_injection", "sqlite3", "/products")),
        ("/products/1 OR 1=1", {}, ("sql_injection", "sqlite3", "/products/<product_id>")),
        ("/download", {"name": "../shop.db"}, ("path_traversal", "open", "/download")),
        ("/tools/lookup", {"host": "x; id"}, ("shell_injection", "subprocess.Popen",
                                              "/tools/lookup")),
        ("/fetch", {"url": canary_server.url}, ("ssrf", "socket.getaddrinfo", "/fetch")),
    ]  # fmt: skip
    with shop.client() as client:
        before, blocked_before = _scrape(client)
        for url, params, _ in attacks:
            assert client.get(url, params=params).status_code == 403
        assert client.get("/products/1").status_code == 200
        after, blocked_after = _scrape(client)
    for _, _, key in attacks:
        assert after.get(key, 0.0) == before.get(key, 0.0) + 1, (key, after)
    # Counted once per request, whichever of the entry point and the middleware answered.
    assert blocked_after == blocked_before + len(attacks)


def test_the_test_client_is_protected_by_the_middleware(tmp_path: Path) -> None:
    # Django's test client (sync and async) is no entry point the agent wraps.
    pytest.importorskip("django")
    env = _environment(tmp_path, "shop.settings_rasp")
    result = subprocess.run(
        [sys.executable, str(APPS / "client_check.py")], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    lines = [line for line in result.stderr.splitlines() if line.startswith("{")]
    alerts = {alert["id"]: alert for alert in map(json.loads, lines) if "id" in alert}
    expected = {
        "attack": ("query.name", "/products"), "async_attack": ("query.name", "/products"),
        "raw": ("path.1", "/products/<product_id>"), "form": ("body.user", "/login"),
        "async_form": ("body.user", "/login"), "json": ("body.user.name", "/api/users/lookup"),
    }  # fmt: skip
    for name, (source, route) in expected.items():
        status, incident = results[name]
        assert status == 403, (name, result.stderr)
        assert (alerts[incident]["input_source"], alerts[incident]["route"]) == (source, route)
    for name in ("honest", "async_honest", "honest_json"):
        assert results[name] == [200, None], (name, result.stderr)


CONFIG_SCRIPT = """
import django
from django.conf import settings
settings.configure(MIDDLEWARE=["rasp.django.RaspMiddleware"], RASP={rasp})
django.setup()
from django.core.handlers.wsgi import WSGIHandler
WSGIHandler()
"""


@pytest.mark.parametrize(
    ("rasp", "env", "message"),
    [("{'mode': 'blok'}", {},
      "ImproperlyConfigured: settings.RASP['mode']='blok' is not valid: expected one of block"),
     ("{'mdoe': 'block'}", {}, "ImproperlyConfigured: settings.RASP: unknown setting 'mdoe'"),
     ("['block']", {}, "ImproperlyConfigured: settings.RASP must be a dict"),
     ("{'mode': 'monitor'}", {"RASP_BODY_LIMIT": "lots"},
      "ConfigError: RASP_BODY_LIMIT='lots' is not valid")],
)  # fmt: skip
def test_a_bad_setting_stops_start_up_naming_it(
    tmp_path: Path, rasp: str, env: dict[str, str], message: str
) -> None:
    pytest.importorskip("django")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RASP_")}
    environ.update(env, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", CONFIG_SCRIPT.format(rasp=rasp)], cwd=tmp_path, env=environ,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert message in result.stderr.splitlines()[-1], result.stderr
