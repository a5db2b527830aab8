"""The frameworks' entry points set the request context with no code change, never twice,
and protect()/unprotect() cycles leave every framework and driver as it was."""

from __future__ import annotations

import importlib
import inspect
import sqlite3
from typing import Any

import pytest
from prometheus_client import REGISTRY

import rasp
from rasp import sinks

ATTACK = "1 UNION SELECT 2"


def _blocked_total() -> float:
    return REGISTRY.get_sample_value("rasp_requests_blocked_total") or 0.0


def _attacks(route: str) -> float:
    labels = {"kind": "sql_injection", "sink": "sqlite3", "action": "blocked", "route": route}
    return REGISTRY.get_sample_value("rasp_attacks_total", labels) or 0.0


def _flask_app() -> Any:
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)

    @app.get("/items/<item_id>")
    def item(item_id: str) -> Any:
        db = sqlite3.connect(":memory:")
        try:
            return {"rows": db.execute(f"SELECT {item_id}").fetchall()}
        finally:
            db.close()

    return app


def _get(app: Any, path: str) -> Any:
    response = app.test_client().get(path)
    response.close()  # a server closes it (PEP 3333): the request ends for the agent
    return response


@pytest.mark.parametrize("setup", ["protect() alone", "explicit middleware", "extension"])
def test_a_flask_app_is_protected_once_whatever_the_setup(
    protected: rasp.Config, setup: str
) -> None:
    app = _flask_app()
    if setup == "explicit middleware":
        app.wsgi_app = rasp.wsgi(app.wsgi_app)
    elif setup == "extension":
        from rasp.flask import Rasp

        Rasp(app, alert_window=0)
        Rasp().init_app(app)  # a second init_app does not wrap again
    blocked, attacks = _blocked_total(), _attacks("/items/<item_id>")
    assert _get(app, "/items/1").status_code == 200
    response = _get(app, f"/items/{ATTACK}")
    assert response.status_code == 403
    assert response.headers["X-Rasp-Incident"]
    # One request, one block, one attack counted: the layers did not each take it.
    assert _blocked_total() == blocked + 1
    assert _attacks("/items/<item_id>") == attacks + 1


def test_the_flask_extension_reads_the_app_config() -> None:
    from rasp.flask import Rasp

    app = _flask_app()
    app.config["RASP"] = {"mode": "monitor"}
    try:
        extension = Rasp(app)
        assert extension.config is not None and extension.config.mode is rasp.Mode.MONITOR
        assert _get(app, f"/items/{ATTACK}").status_code == 200  # monitored, not blocked
        app.config["RASP"] = {"mode": "blok"}
        with pytest.raises(rasp.ConfigError, match="mode"):
            Rasp(app)
    finally:
        rasp.unprotect()


def test_a_starlette_app_is_protected_with_no_middleware(protected: rasp.Config) -> None:
    pytest.importorskip("starlette")
    import asyncio

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def item(request: Any) -> JSONResponse:
        db = sqlite3.connect(":memory:")
        try:
            query = f"SELECT {request.path_params['item_id']}"
            return JSONResponse({"rows": db.execute(query).fetchall()})
        finally:
            db.close()

    app = Starlette(routes=[Route("/items/{item_id}", item)])
    app.add_middleware(rasp.ASGIMiddleware)  # and by hand as well: still once

    async def go(path: str) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get(path)).status_code

    blocked, attacks = _blocked_total(), _attacks("/items/{item_id}")
    assert asyncio.run(go("/items/1")) == 200
    assert asyncio.run(go(f"/items/{ATTACK}")) == 403
    assert _blocked_total() == blocked + 1
    assert _attacks("/items/{item_id}") == attacks + 1


def _everything_patched() -> dict[tuple[str, str], Any]:
    """Every (module, attribute) the agent patches, read unbound, for modules importable."""
    found: dict[tuple[str, str], Any] = {}
    for family in sinks.FAMILIES:
        for patch in importlib.import_module(family).PATCHES:
            try:
                owner: Any = importlib.import_module(patch.module)
            except ImportError:
                continue
            *parents, name = patch.attribute.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            found[(patch.module, patch.attribute)] = (
                inspect.getattr_static(owner, name, None)
                if isinstance(owner, type)
                else getattr(owner, name, None)
            )
            found[(patch.module, patch.attribute + " (own)")] = isinstance(
                owner, type
            ) and name in vars(owner)
    return found


def test_protect_and_unprotect_cycles_leave_everything_as_it_was() -> None:
    before = _everything_patched()
    assert len(before) > 60  # the frameworks and drivers installed here are imported
    for mode in ("block", "monitor", "block"):
        rasp.protect(rasp.Config(mode=mode))
        during = _everything_patched()
        changed = [key for key in before if during[key] is not before[key]]
        assert len(changed) >= 40, "protect() patched too little"
        rasp.unprotect()
        after = _everything_patched()
        assert [key for key in before if after[key] is not before[key]] == []


_DJANGO_ENDS_THE_REQUEST = """
import os, sys
sys.path.insert(0, sys.argv[1])
os.environ["DJANGO_SETTINGS_MODULE"] = "shop.settings"  # the plain settings: no middleware
os.environ["SHOP_DB"] = sys.argv[2]
import rasp
rasp.protect(rasp.Config(alert_window=0))
from django.core import signals
from django.db import connection
from shop.wsgi import application
seen = []
signals.request_finished.connect(lambda **kw: seen.append("finished"), weak=False)
statuses = []
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/products", "SERVER_NAME": "127.0.0.1",
           "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": __import__("io").BytesIO(),
           "QUERY_STRING": "name=x%27%20OR%201=1--"}
body = application(environ, lambda status, headers, exc=None: statuses.append(status))
b"".join(body)
body.close()
print(statuses[0], seen, connection.connection is None)
"""


def test_a_block_in_django_ends_the_request_as_django_does(tmp_path: Any) -> None:
    # With no middleware of the agent's in MIDDLEWARE (rasp run, protect() alone): Django
    # still sends request_finished, which closes its database connection.
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("django")
    example = Path(__file__).resolve().parents[1] / "examples" / "django_shop"
    done = subprocess.run(
        [sys.executable, "-c", _DJANGO_ENDS_THE_REQUEST, str(example), str(tmp_path / "s.db")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.stdout.split() == ["403", "Forbidden", "['finished']", "True"], done.stderr


def test_unprotect_stays_undone_for_an_app_that_kept_its_wsgi_app() -> None:
    # app.wsgi_app = ProxyFix(app.wsgi_app) keeps the bound entry point: after
    # unprotect() its requests run unjudged, and do not put the guards back.
    rasp.protect(rasp.Config())
    app = _flask_app()
    kept = app.wsgi_app
    rasp.unprotect()
    app.wsgi_app = kept
    assert _get(app, f"/items/{ATTACK}").status_code == 200
    assert sinks.installed() == []


def test_the_entry_point_called_through_the_class_works(protected: rasp.Config) -> None:
    flask = pytest.importorskip("flask")
    app = _flask_app()
    statuses: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/items/{ATTACK}", "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http"}  # fmt: skip
    body = flask.Flask.wsgi_app(app, environ, lambda s, h, e=None: statuses.append(s))
    b"".join(body)
    body.close()  # type: ignore[attr-defined]
    assert statuses == ["403 Forbidden"]


def test_unhashable_apps_are_served(protected: rasp.Config) -> None:
    flask = pytest.importorskip("flask")

    class Comparable(flask.Flask):  # type: ignore[misc]
        def __eq__(self, other: object) -> bool:
            return other is self

    app = Comparable(__name__)

    @app.get("/")
    def home() -> str:
        return "ok"

    assert _get(app, "/").status_code == 200
