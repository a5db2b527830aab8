"""The app every agent protects in ``benchmarks/peers.py``: a Flask app for gunicorn
(``peer_kit.app:flask_app``) and a Starlette app for uvicorn (``peer_kit.app:starlette_app``).

It runs inside each agent's own virtualenv, so it needs nothing but the web stack and the
standard library. The agent is chosen by ``BENCH_AGENT`` and switched on the way its
documentation says, before the web framework is imported:

  none     nothing is loaded
  rasp     ``rasp.protect()`` (this project; the framework entry points are wrapped)
  zen      ``aikido_zen.protect()`` (Aikido Zen; ``AIKIDO_BLOCK=true`` set by the runner)
  ddtrace  ``import ddtrace.auto`` (the same as ``ddtrace-run``; AppSec and RASP switched on
           by the runner's ``DD_APPSEC_*`` settings)

Routes, the same in both apps:

  POST /order          the realistic route the load test drives: a 50-field JSON body, five
                       SQL queries (two built by string formatting with user input, as in
                       the code a RASP is there to protect), a file read whose name comes
                       from the body, and an outbound HTTP call to a loopback service.
  POST /micro?op=&n=   per-call cost of one guarded call, timed inside a real request whose
                       JSON body holds the inputs the agent must consider.
  GET  /case/<family>/<context>?v=   one accuracy case (``peer_kit.vulnerable``).
  GET  /agent          which agent is loaded, to check the setup before timing.

Settings (environment): BENCH_DB (``sqlite`` or ``postgresql``), BENCH_SANDBOX (the folder
``shop.prepare`` and ``vulnerable.prepare`` filled), BENCH_SERVICE (the loopback service's
base URL), BENCH_DSN (PostgreSQL), BENCH_PREFIX (PostgreSQL table prefix).
"""

from __future__ import annotations

import os

AGENT = os.environ.get("BENCH_AGENT", "none")
if AGENT == "rasp":
    import rasp

    rasp.protect()
elif AGENT == "zen":
    import aikido_zen

    aikido_zen.protect()
elif AGENT == "ddtrace":
    import ddtrace.auto  # noqa: F401
elif AGENT != "none":
    raise SystemExit(f"BENCH_AGENT must be none, rasp, zen or ddtrace, not {AGENT!r}")

import json  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

SANDBOX = Path(os.environ.get("BENCH_SANDBOX", "/tmp/rasp-bench-sandbox"))
SHOP = SANDBOX / "shop"
SERVICE = os.environ.get("BENCH_SERVICE", "http://127.0.0.1:9")
DB = os.environ.get("BENCH_DB", "sqlite")
DSN = os.environ.get("BENCH_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")
PREFIX = os.environ.get("BENCH_PREFIX", "bench_")
SORTS = ("price", "name", "id")

_local = threading.local()


def _sqlite() -> sqlite3.Connection:
    connection = getattr(_local, "sqlite", None)
    if connection is None:
        connection = sqlite3.connect(SHOP / "shop.db", check_same_thread=False)
        _local.sqlite = connection
    return connection


def _postgres() -> Any:
    connection = getattr(_local, "postgres", None)
    if connection is None:
        import psycopg

        connection = psycopg.connect(DSN, autocommit=True)
        _local.postgres = connection
    return connection


def _query(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if DB == "postgresql":
        with _postgres().cursor() as cursor:
            if params:
                cursor.execute(sql.replace("?", "%s").replace("{p}", PREFIX), params)
            else:  # no placeholders: a "%" in a LIKE pattern is the app's own text
                cursor.execute(sql.replace("{p}", PREFIX))
            return cursor.fetchall()
    return _sqlite().execute(sql.replace("{p}", ""), params).fetchall()


def order(body: dict[str, Any], session: str) -> dict[str, Any]:
    """The work of ``POST /order``: what a shop's checkout page does."""
    q = str(body.get("q", ""))
    category = str(body.get("category", "home-office"))
    sort = body.get("sort") if body.get("sort") in SORTS else "id"
    user = _query("SELECT id, name FROM {p}users WHERE session = ?", (session,))
    # The app's own string formatting, as in the code a RASP is there to protect.
    products = _query(
        f"SELECT id, name, price FROM {{p}}products WHERE category = '{category}' "
        f"AND name LIKE '%{q}%' ORDER BY {sort} LIMIT 10"
    )
    (total,) = _query("SELECT count(*) FROM {p}products WHERE category = ?", (category,))[0]
    top = products[0][0] if products else 1
    reviews = _query(
        "SELECT r.id, r.author, r.body FROM {p}reviews r JOIN {p}products p "
        f"ON p.id = r.product_id WHERE p.id = {top} ORDER BY r.id DESC LIMIT 5"
    )
    categories = _query("SELECT id, name FROM {p}categories ORDER BY name")
    locale = str(body.get("locale", "en"))
    with open(SHOP / "locales" / f"{locale}.json", encoding="utf-8") as file:
        labels = json.load(file)
    currency = str(body.get("currency", "EUR"))
    with urllib.request.urlopen(f"{SERVICE}/rates?currency={currency}", timeout=5) as answer:
        rate = json.loads(answer.read())["rate"]
    return {
        "user": user[0][1] if user else None,
        "total": total,
        "products": [[i, n, float(p) * rate] for i, n, p in products],
        "reviews": [list(r) for r in reviews],
        "categories": [list(c) for c in categories],
        "labels": labels,
        "fields": len(body),
    }


# --- micro: the cost of one guarded call, inside a request ------------------------------------

FILE = SHOP / "locales" / "en.json"


def _op(name: str) -> Callable[[int], object]:
    if name == "sqlite":
        connection = _sqlite()
        return lambda i: connection.execute(
            f"SELECT id, name, price FROM products WHERE id = {i % 50 + 1} "
            "AND name <> 'red chair, oak'"
        ).fetchall()
    if name == "psycopg":
        cursor = _postgres().cursor()

        def execute(i: int) -> object:
            cursor.execute(
                f"SELECT id, name, price FROM {PREFIX}products WHERE id = {i % 50 + 1} "
                "AND name <> 'red chair, oak'"
            )
            return cursor.fetchall()

        return execute
    if name == "open":

        def read(_i: int) -> object:
            with open(FILE, encoding="utf-8") as file:
                return file.read()

        return read
    if name == "subprocess":
        return lambda _i: subprocess.run(["true"], check=True)
    if name == "getaddrinfo":
        return lambda _i: socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    raise ValueError(f"unknown op {name!r}")


def micro(op: str, calls: int) -> dict[str, Any]:
    """The cost of one call of ``op``, in µs: the median of up to ten batches' cost per call.

    A batch holds up to ``calls / 10`` calls and about 50 ms of work at most, and batches
    stop after one second once three are done, so a slow agent's request stays well inside
    the server's worker timeout."""
    call = _op(op)
    began = time.perf_counter()
    call(0)
    first = time.perf_counter() - began
    batch = max(1, min(calls // 10, int(0.05 / max(first, 1e-7))))
    deadline = time.perf_counter() + 1.0
    per_call: list[float] = []
    done = 1
    while len(per_call) < 10 and (len(per_call) < 3 or time.perf_counter() < deadline):
        began = time.perf_counter()
        for i in range(done, done + batch):
            call(i)
        per_call.append((time.perf_counter() - began) / batch * 1e6)
        done += batch
    return {"op": op, "us": statistics.median(per_call), "calls": done}


def agent_info() -> dict[str, Any]:
    loaded = [name for name in ("rasp", "aikido_zen", "ddtrace") if name in sys.modules]
    return {"agent": AGENT, "loaded": loaded, "db": DB, "pid": os.getpid()}


def run_case(family: str, context: str, value: str) -> dict[str, Any]:
    from peer_kit import vulnerable

    return vulnerable.handle(
        family,
        context,
        value,
        sandbox=SANDBOX,
        canary_url=SERVICE,
        oracle=AGENT == "none",
    )


# --- Flask -----------------------------------------------------------------------------------

from flask import Flask, jsonify, request  # noqa: E402

flask_app = Flask(__name__)


@flask_app.post("/order")
def flask_order() -> Any:
    return jsonify(order(request.get_json(), request.cookies.get("session", "")))


@flask_app.post("/micro")
def flask_micro() -> Any:
    request.get_json()
    return jsonify(micro(request.args["op"], int(request.args.get("n", "100"))))


@flask_app.get("/case/<family>/<context>")
def flask_case(family: str, context: str) -> Any:
    return jsonify(run_case(family, context, request.args.get("v", "")))


@flask_app.get("/agent")
def flask_agent() -> Any:
    return jsonify(agent_info())


# --- Starlette -------------------------------------------------------------------------------

from starlette.applications import Starlette  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402


async def starlette_order(request: Request) -> JSONResponse:
    body = await request.json()
    session = request.cookies.get("session", "")
    return JSONResponse(await run_in_threadpool(order, body, session))


async def starlette_micro(request: Request) -> JSONResponse:
    await request.json()
    op, calls = request.query_params["op"], int(request.query_params.get("n", "100"))
    return JSONResponse(await run_in_threadpool(micro, op, calls))


async def starlette_case(request: Request) -> JSONResponse:
    family, context = request.path_params["family"], request.path_params["context"]
    value = request.query_params.get("v", "")
    return JSONResponse(await run_in_threadpool(run_case, family, context, value))


async def starlette_agent(request: Request) -> JSONResponse:
    return JSONResponse(agent_info())


starlette_app = Starlette(
    routes=[
        Route("/order", starlette_order, methods=["POST"]),
        Route("/micro", starlette_micro, methods=["POST"]),
        Route("/case/{family}/{context}", starlette_case),
        Route("/agent", starlette_agent),
    ]
)
