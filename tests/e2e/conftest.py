"""Real servers for the end-to-end tests: the example shops under gunicorn and uvicorn.

Each server is started once per session on a free loopback port, with its own SQLite file
and its stderr in a file, so tests can read the alert lines the agent wrote. Tests get a
:class:`Shop` and talk to it over real HTTP with httpx.
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from servers import Server, free_port, running

ROOT = Path(__file__).resolve().parents[2]
TRUSTED_HOST = "127.0.0.2"
"""A loopback address the block-mode shops allow in ``RASP_SSRF_ALLOW``: it stands in for a
partner server on the internet, which the tests cannot reach."""
EXAMPLES = ROOT / "examples"


@dataclass
class Shop(Server):
    """A running example shop: its address, its database file and its stderr."""

    db_path: Path
    mode: str
    seeded_canary = ((1, "canary-secret-1"), (2, "canary-secret-2"))
    """The canary rows the shop seeds at start; no attack may change them."""

    def canary(self) -> tuple[tuple[int, str], ...]:
        """The canary rows, read through a connection of the test's own (raises if gone)."""
        connection = sqlite3.connect(self.db_path, timeout=30)
        try:
            rows = connection.execute("SELECT id, secret FROM canary ORDER BY id").fetchall()
            return tuple(rows)
        finally:
            connection.close()


def _require(*modules: str) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(
            f"end-to-end tests need {', '.join(missing)} installed (pip install -e .[test])"
        )


def _serve(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    example: str,
    server_args: list[str],
    env_extra: dict[str, str],
) -> Iterator[Shop]:
    workdir = tmp_path_factory.mktemp(name)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASP_", "PROMETHEUS_"))}
    env.pop("prometheus_multiproc_dir", None)
    env.update(
        PYTHONPATH=os.pathsep.join([str(EXAMPLES / example), str(ROOT)]),
        PYTHONUNBUFFERED="1",
        SHOP_DB=str(workdir / "shop.db"),
        # Each attack's own alert line, so the tests can read it: the window that folds
        # repeats into a summary has tests of its own (test_alerts.py).
        RASP_ALERT_WINDOW="0",
    )
    env.update(env_extra)
    args = [sys.executable, "-m", *[a.replace("{port}", str(port)) for a in server_args]]
    shop = Shop(
        name=name,
        url=f"http://127.0.0.1:{port}",
        db_path=workdir / "shop.db",
        stderr_path=workdir / "stderr.log",
        mode=env.get("RASP_MODE", "block"),
    )
    # cwd is the temp dir so no pyproject.toml [tool.rasp] of the checkout applies.
    with running(shop, args, workdir, env, "/products/1"):
        yield shop


def _gunicorn(*extra: str) -> list[str]:
    return ["gunicorn", "app:app", "--bind", "127.0.0.1:{port}", "--workers", "2",
            "--log-level", "warning", *extra]  # fmt: skip


_UVICORN = ["uvicorn", "app:app", "--host", "127.0.0.1", "--port", "{port}",
            "--log-level", "warning", "--no-access-log"]  # fmt: skip


@pytest.fixture(scope="session")
def flask_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Flask under gunicorn, 2 sync workers, block mode, metrics added up across workers."""
    _require("gunicorn", "flask")
    metrics_dir = tmp_path_factory.mktemp("flask-prometheus")
    env = {"RASP_MODE": "block", "RASP_METRICS_PATH": "/metrics", "RASP_SSRF_ALLOW": TRUSTED_HOST,
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}  # fmt: skip
    yield from _serve(tmp_path_factory, "flask-sync", "flask_shop", _gunicorn(), env)


@pytest.fixture(scope="session")
def flask_gthread_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Flask under gunicorn, 2 gthread workers of 4 threads each, block mode."""
    _require("gunicorn", "flask")
    args = _gunicorn("--worker-class", "gthread", "--threads", "4")
    yield from _serve(tmp_path_factory, "flask-gthread", "flask_shop", args, {"RASP_MODE": "block"})


@pytest.fixture(scope="session")
def flask_monitor_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Flask under gunicorn, 2 sync workers, monitor mode."""
    _require("gunicorn", "flask")
    env = {"RASP_MODE": "monitor"}
    yield from _serve(tmp_path_factory, "flask-monitor", "flask_shop", _gunicorn(), env)


@pytest.fixture(scope="session")
def starlette_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Starlette under uvicorn, block mode, metrics served."""
    _require("uvicorn", "starlette")
    env = {"RASP_MODE": "block", "RASP_METRICS_PATH": "/metrics", "RASP_SSRF_ALLOW": TRUSTED_HOST}
    yield from _serve(tmp_path_factory, "starlette", "starlette_shop", _UVICORN, env)


@pytest.fixture(scope="session")
def starlette_monitor_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Starlette under uvicorn, monitor mode."""
    _require("uvicorn", "starlette")
    yield from _serve(
        tmp_path_factory, "starlette-monitor", "starlette_shop", _UVICORN, {"RASP_MODE": "monitor"}
    )


@pytest.fixture(params=["flask", "starlette"])
def shop(request: pytest.FixtureRequest) -> Shop:
    """Each block-mode shop in turn: Flask/gunicorn and Starlette/uvicorn."""
    return request.getfixturevalue(f"{request.param}_shop")  # type: ignore[no-any-return]


@pytest.fixture(params=["flask", "starlette"])
def monitor_shop(request: pytest.FixtureRequest) -> Shop:
    """Each monitor-mode shop in turn."""
    return request.getfixturevalue(f"{request.param}_monitor_shop")  # type: ignore[no-any-return]


class Canary:
    """An HTTP server on loopback that records every request it gets.

    At ``/bounce`` it answers 302 to ``bounce_to`` (set by its owner, never named by the
    request); anything else gets 200 and is recorded.
    """

    def __init__(self, host: str, bounce_to: str = "") -> None:
        self.hits: list[str] = []
        self.bounce_to = bounce_to
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/bounce":
                    self.send_response(302)
                    self.send_header("Location", canary.bounce_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                canary.hits.append(self.path)
                body = b"canary: internal data"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def canary_server() -> Iterator[Canary]:
    """An internal service on 127.0.0.1 that no forged request may reach."""
    server = Canary("127.0.0.1")
    yield server
    server.close()


@pytest.fixture(scope="session")
def partner_server(canary_server: Canary) -> Iterator[Canary]:
    """A server the shops may reach (it stands in for one on the internet); its ``/bounce``
    redirects to the internal canary."""
    server = Canary(TRUSTED_HOST, bounce_to=f"{canary_server.url}/after-redirect")
    yield server
    server.close()
