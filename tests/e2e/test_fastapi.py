"""The FastAPI example on PostgreSQL, over real HTTP under uvicorn, in three set-ups.

- ``rasp-run``: ``rasp run -- uvicorn app:app``; the app holds no agent code at all;
- ``middleware``: ``uvicorn protected:app``, the app with ``add_middleware(rasp.ASGIMiddleware)``;
- ``both``: ``rasp run -- uvicorn protected:app``: each request checked and counted once.

Each attack (SQL through a path parameter, a Pydantic JSON body and ORDER BY; shell; path;
SSRF) is answered 403 with one alert and never does its damage: the canary table, read
through the test's own connection, is as seeded; the file a shell injection would create
does not exist; the secret beside the files folder is not returned; the internal canary
server records no hit. Honest requests, odd-looking ones included, are served.

Control run: ``FASTAPI_E2E_RASP_MODE=off pytest tests/e2e/test_fastapi.py`` serves the same
apps unprotected; every attack test must then fail (the attacks are real).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import Server, free_port, start, stop, wait_ready

if TYPE_CHECKING:
    from .conftest import Canary

pytest.importorskip("fastapi", reason="FastAPI is not installed (pip install -e .[test])")
pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install -e .[test])")
psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e .[test])")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fastapi_service"
TRUSTED_HOST = "127.0.0.2"  # the partner server of conftest.py, allowed in RASP_SSRF_ALLOW
SEEDED = ((1, "canary-secret-1"), (2, "canary-secret-2"))


def _script(name: str, module: str) -> list[str]:
    """The console script, as an operator types it (or its module where it is missing)."""
    path = Path(sys.executable).parent / name
    return [str(path)] if path.is_file() else [sys.executable, "-m", module]


RASP_RUN = [*_script("rasp", "rasp.cli"), "run", "--"]
UVICORN = [*_script("uvicorn", "uvicorn"), "--host", "127.0.0.1", "--port", "{port}",
           "--log-level", "warning", "--no-access-log"]  # fmt: skip
SETUPS = {
    "rasp-run": [*RASP_RUN, *UVICORN, "app:app"],
    "middleware": [*UVICORN, "protected:app"],
    "both": [*RASP_RUN, *UVICORN, "protected:app"],
}
# Every route template of the app: the only values the metrics' `route` label may take.
ROUTES = {"/health", "/items", "/items/{item_id}", "/items/search", "/safe/items",
          "/safe/items/{item_id}", "/safe/items/search", "/download", "/tools/lookup",
          "/tools/lookup-safe", "/fetch", "unknown"}  # fmt: skip


@dataclass
class Service(Server):
    dsn: str
    prefix: str
    workdir: Path

    @property
    def canary_table(self) -> str:
        return f"{self.prefix}canary"

    def canary(self) -> tuple[tuple[int, str], ...] | str:
        """The canary rows through a connection of the test's own (or why they are gone)."""
        try:
            with psycopg.connect(self.dsn) as connection:
                rows = connection.execute(f"SELECT id, secret FROM {self.canary_table} ORDER BY id")
                return tuple((int(i), str(s)) for i, s in rows.fetchall())
        except psycopg.Error as error:
            return f"canary unreadable: {error!r}"

    def reseed(self) -> None:
        """Put the canary back as seeded, so one attack let through fails only its test."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {self.canary_table}")
            connection.execute(f"CREATE TABLE {self.canary_table} (id integer PRIMARY KEY,"
                               " secret text NOT NULL)")  # fmt: skip
            connection.execute(f"INSERT INTO {self.canary_table} VALUES (%s, %s), (%s, %s)",
                               [v for row in SEEDED for v in row])  # fmt: skip

    def drop_tables(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            for table in ("items", "canary"):
                connection.execute(f"DROP TABLE IF EXISTS {self.prefix}{table}")


@pytest.fixture(scope="module")
def services(
    postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    """The three set-ups, started together once for the module, each with its own tables."""
    started: dict[str, tuple[Service, subprocess.Popen[bytes]]] = {}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RASP_", "PROMETHEUS_"))}
    try:
        for name, command in SETUPS.items():
            workdir = tmp_path_factory.mktemp(f"fastapi-{name}")
            port = free_port()
            service = Service(
                name=f"fastapi {name}", url=f"http://127.0.0.1:{port}", dsn=postgres_dsn,
                prefix=f"fapi_{os.getpid()}_{name.replace('-', '_')}_", workdir=workdir,
                stderr_path=workdir / "stderr.log",
            )  # fmt: skip
            service.drop_tables()  # leftovers of an interrupted run with this pid
            env = base | {
                "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(ROOT)]),
                "PYTHONUNBUFFERED": "1",
                "SERVICE_DSN": postgres_dsn,
                "SERVICE_TABLE_PREFIX": service.prefix,
                "SERVICE_FILES": str(workdir / "files"),
                "RASP_MODE": os.environ.get("FASTAPI_E2E_RASP_MODE", "block"),
                "RASP_METRICS_PATH": "/metrics",
                "RASP_ALERT_WINDOW": "0",  # every attack's own alert line, read below
                "RASP_SSRF_ALLOW": TRUSTED_HOST,
            }
            args = [arg.replace("{port}", str(port)) for arg in command]
            # cwd is the temp dir so no pyproject.toml [tool.rasp] of the checkout applies.
            process = start(service, args, workdir, env)
            started[name] = service, process
        for service, process in started.values():  # started together, so waited for together
            wait_ready(service, process, "/health")
        yield {name: service for name, (service, _) in started.items()}
    finally:
        for service, process in started.values():
            stop(process)
            service.drop_tables()


@pytest.fixture(params=list(SETUPS))
def service(request: pytest.FixtureRequest, services: dict[str, Service]) -> Service:
    return services[request.param]


def _blocked(service: Service, offset: int, response: httpx.Response, kind: str) -> dict[str, Any]:
    """The one alert of a 403 answer, checked against its incident id."""
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "request_blocked"
    incident = response.headers["x-rasp-incident"]
    alerts = service.alerts(offset)
    assert [alert["id"] for alert in alerts] == [incident]  # one alert, not one per layer
    [alert] = alerts
    assert (alert["kind"], alert["action"]) == (kind, "blocked")
    return alert


# --- SQL injection: path parameter, Pydantic JSON body, ORDER BY ----------------------------

# The path parameter is also the path's segment 1: the alert may name either.
PATH_PARAM = ("path.1", "path.item_id")
# (id, route, payload, input sources the alert may name); {canary} is the canary table.
SQL_ATTACKS = [
    ("path-stacked-delete", "/items/{item_id}", "0; DELETE FROM {canary}", PATH_PARAM),
    ("path-union-leak", "/items/{item_id}", "0 UNION SELECT id, secret, 0 FROM {canary}",
     PATH_PARAM),
    ("path-tautology", "/items/{item_id}", "0 OR 1=1", PATH_PARAM),
    ("body-stacked-drop", "/items/search", "x'; DROP TABLE {canary}; --", ("body.name",)),
    ("body-union-leak", "/items/search",
     "x' UNION SELECT id, secret, 0 FROM {canary} --", ("body.name",)),
    ("body-dollar-update", "/items/search",
     "x'; UPDATE {canary} SET secret = $$owned$$; --", ("body.name",)),
    ("order-by-stacked-insert", "/items",
     "id; INSERT INTO {canary} VALUES (3, 'planted')", ("query.sort",)),
    ("order-by-subquery-leak", "/items",
     "(SELECT secret FROM {canary} LIMIT 1)::int", ("query.sort",)),
]  # fmt: skip


def _send_sql(client: httpx.Client, route: str, payload: str) -> httpx.Response:
    if route == "/items/{item_id}":
        return client.get(f"/items/{quote(payload, safe='')}")
    if route == "/items/search":
        return client.post("/items/search", json={"name": payload})
    return client.get("/items", params={"sort": payload})


@pytest.mark.parametrize(
    ("route", "payload", "sources"),
    [attack[1:] for attack in SQL_ATTACKS],
    ids=[attack[0] for attack in SQL_ATTACKS],
)
def test_sql_injection_is_blocked_and_never_reaches_postgresql(
    service: Service, route: str, payload: str, sources: tuple[str, ...]
) -> None:
    offset = service.stderr_size()
    try:
        with service.client() as client:
            response = _send_sql(client, route, payload.format(canary=service.canary_table))
        alert = _blocked(service, offset, response, "sql_injection")
        assert (alert["sink"], alert["dialect"]) == ("psycopg", "postgresql")
        assert alert["input_source"] in sources
        assert alert["route"] == route
        assert alert["code_file"].endswith("app.py")
        assert "canary-secret" not in response.text
        assert service.canary() == SEEDED
    finally:
        if service.canary() != SEEDED:
            service.reseed()


# --- shell, path, SSRF -----------------------------------------------------------------------

SHELL_ATTACKS = ["localhost; touch {file}", "localhost && touch {file}", "$(touch {file})",
                 "`touch {file}`", "localhost\ntouch {file}"]  # fmt: skip


@pytest.mark.parametrize("payload", SHELL_ATTACKS)
def test_shell_injection_is_blocked_and_never_runs(service: Service, payload: str) -> None:
    file = service.workdir / f"pwned-{secrets.token_hex(4)}"
    offset = service.stderr_size()
    with service.client() as client:
        response = client.get("/tools/lookup", params={"host": payload.format(file=file)})
    alert = _blocked(service, offset, response, "shell_injection")
    assert alert["input_source"] == "query.host"
    # uvicorn runs on uvloop where it is installed, which starts processes without Popen.
    assert alert["sink"] in ("subprocess.Popen", "uvloop.Loop.subprocess_shell")
    assert not file.exists()


@pytest.mark.parametrize(
    "name", ["../secret.txt", "manuals/../../secret.txt", "report-2024.pdf/../../secret.txt",
             "{absolute}"],
)  # fmt: skip
def test_path_traversal_is_blocked_and_the_secret_not_returned(service: Service, name: str) -> None:
    secret = secrets.token_hex(16)
    (service.workdir / "secret.txt").write_text(secret)
    offset = service.stderr_size()
    with service.client() as client:
        absolute = str(service.workdir / "secret.txt")
        response = client.get("/download", params={"name": name.format(absolute=absolute)})
    alert = _blocked(service, offset, response, "path_traversal")
    assert (alert["input_source"], alert["route"]) == ("query.name", "/download")
    assert secret not in response.text


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]"]
)
def test_ssrf_is_blocked_and_the_internal_server_not_hit(
    service: Service, canary_server: Canary, host: str
) -> None:
    port = canary_server.url.rsplit(":", 1)[1]
    before = list(canary_server.hits)
    offset = service.stderr_size()
    with service.client() as client:
        response = client.get("/fetch", params={"url": f"http://{host}:{port}/internal"})
    alert = _blocked(service, offset, response, "ssrf")
    assert alert["input_source"] == "query.url"
    assert "canary: internal data" not in response.text
    assert canary_server.hits == before


def test_ssrf_through_a_redirect_is_blocked(
    service: Service, canary_server: Canary, partner_server: Canary
) -> None:
    # The partner (allowed) answers 302 to the internal canary: a target the user chose too.
    before = list(canary_server.hits)
    offset = service.stderr_size()
    with service.client() as client:
        response = client.get("/fetch", params={"url": f"{partner_server.url}/bounce"})
    alert = _blocked(service, offset, response, "ssrf")
    assert alert["input_source"] == "redirect.location"
    assert canary_server.hits == before


# --- honest requests -------------------------------------------------------------------------

# (id, method, path, request options, expected JSON or body text)
HONEST: list[tuple[str, str, str, dict[str, Any], Any]] = [
    ("item", "GET", "/items/2", {}, {"id": 2, "name": "Tea kettle", "price": 31.0}),
    ("order-by-desc", "GET", "/items", {"params": {"sort": "price DESC, name"}}, [4, 2, 1, 3]),
    ("search", "POST", "/items/search", {"json": {"name": "lamp"}}, [1]),
    # Looks like SQL, but stays inside the one string literal it lands in.
    ("search-odd-text", "POST", "/items/search",
     {"json": {"name": "select * from lamps; drop -- or 1=1 /*"}}, []),
    ("search-price", "POST", "/items/search", {"json": {"name": "e", "max_price": 30}}, [1, 3]),
    ("safe-item", "GET", "/safe/items/3", {}, {"id": 3, "name": "Notebook", "price": 4.2}),
    ("safe-order-by", "GET", "/safe/items", {"params": {"sort": "name"}}, [1, 4, 3, 2]),
    ("safe-search-quotes", "POST", "/safe/items/search",
     {"json": {"name": "O'Brien'; DROP TABLE x; --"}}, []),
    ("download", "GET", "/download", {"params": {"name": "my..notes.txt"}}, "notes"),
    ("download-inside", "GET", "/download",
     {"params": {"name": "manuals/../report-2024.pdf"}}, "%PDF- yearly report"),
    ("lookup", "GET", "/tools/lookup", {"params": {"host": "localhost"}}, 0),
    ("lookup-safe", "GET", "/tools/lookup-safe", {"params": {"host": "a-b.c; touch x"}}, 2),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "options", "expected"),
    [case[1:] for case in HONEST],
    ids=[case[0] for case in HONEST],
)
def test_honest_requests_are_served(
    service: Service, method: str, path: str, options: dict[str, Any], expected: Any
) -> None:
    with service.client() as client:
        response = client.request(method, path, **options)
    assert response.status_code == 200, response.text
    assert "x-rasp-incident" not in response.headers
    if isinstance(expected, str):
        assert response.text == expected
    elif isinstance(expected, int):  # getent's status: 0 found, 2 not found
        assert response.json()["status"] == expected
    elif isinstance(expected, list):
        assert [row["id"] for row in response.json()] == expected
    else:
        assert response.json() == expected


def test_honest_fetch_of_an_allowed_host_is_served(
    service: Service, partner_server: Canary
) -> None:
    with service.client() as client:
        response = client.get("/fetch", params={"url": f"{partner_server.url}/feed"})
    assert response.status_code == 200, response.text
    assert response.json()["body"] == "canary: internal data"


# --- metrics ---------------------------------------------------------------------------------

ATTACKS_BY_PATH_PARAM = 3


def _scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            route = sample.labels.get("route")
            # Labels are route templates, never the raw path or the payload in it.
            assert route is None or route in ROUTES, sample
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_count_each_attack_once_under_its_route_template(service: Service) -> None:
    attacks = ("rasp_attacks_total", (("action", "blocked"), ("kind", "sql_injection"),
               ("route", "/items/{item_id}"), ("sink", "psycopg")))  # fmt: skip
    blocked = ("rasp_requests_blocked_total", ())
    served = ("rasp_requests_total", ())
    offset = service.stderr_size()
    with service.client() as client:
        before = _scrape(client)
        for i in range(ATTACKS_BY_PATH_PARAM):
            response = client.get(f"/items/{quote(f'{i} OR {i}={i}', safe='')}")
            assert response.status_code == 403, response.text
        assert client.get("/items/1").status_code == 200
        after = _scrape(client)
    assert after[attacks] - before.get(attacks, 0.0) == ATTACKS_BY_PATH_PARAM
    assert after[blocked] - before[blocked] == ATTACKS_BY_PATH_PARAM
    assert after[served] - before[served] == ATTACKS_BY_PATH_PARAM + 1  # /metrics not counted
    alerts = service.alerts(offset)
    assert len(alerts) == ATTACKS_BY_PATH_PARAM
    assert {alert["route"] for alert in alerts} == {"/items/{item_id}"}
