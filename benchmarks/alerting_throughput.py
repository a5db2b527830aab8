"""Blocked requests per second: the cost of the reporting path when an attack floods in.

Method: a WSGI app (the agent's middleware around a view that runs a SQL statement built
from the query string on an in-memory SQLite database) is called in-process, with the
environ a server would give it, for a fixed number of requests per round. Every request
carries the same SQL injection and is blocked (403). No HTTP server: the figure is the
agent's own cost per blocked request, which a server's cost would only dilute. The
configurations, in interleaved rounds (median requests per second reported):

  no agent          the same app unprotected: the injected statement runs (the limit)
  alert every one   ``alert_window=0``: every attack is a JSON log line (to /dev/null)
  windowed alerts   the default 60 s window: one line, then the repeats are counted
  alerts disabled   the ``rasp.alerts`` logger disabled: metrics and traces only

Every configuration counts the attack in Prometheus and adds the span event (no tracer
provider: the no-op API). Run: ``python benchmarks/alerting_throughput.py`` (``--quick``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from rasp import Config, protect, unprotect
from rasp.middleware.wsgi import WSGIMiddleware
from rasp.report import JsonFormatter

ATTACK = "' OR 1=1 --"
QUERY = "name=%27%20OR%201%3D1%20--"


def _app(db: sqlite3.Connection) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        rows = db.execute(f"SELECT id FROM products WHERE name = '{ATTACK}'").fetchall()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(rows)).encode()]

    return app


def _environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/products",
        "QUERY_STRING": QUERY,
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "sqlmap/1.8",
        "HTTP_ACCEPT": "*/*",
        "wsgi.input": None,
    }


def _serve(app: Callable[..., Any], requests: int) -> tuple[float, str]:
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(line)
        return lambda data: None

    started = time.perf_counter()
    for _ in range(requests):
        body = app(_environ(), start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    elapsed = time.perf_counter() - started
    return requests / elapsed, status[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and requests")
    args = parser.parse_args()
    rounds, requests = (5, 1000) if args.quick else (11, 3000)

    alerts = logging.getLogger("rasp.alerts")
    sink = open(os.devnull, "w")
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    alerts.addHandler(handler)  # the app's logging: the agent's stderr fallback stays quiet
    alerts.propagate = False

    def configure(name: str) -> Callable[..., Any] | None:
        alerts.disabled = name == "alerts disabled"
        if name == "no agent":
            unprotect()
            return None
        window = 0 if name == "alert every one" else 60
        protect(Config(alert_window=window))
        return WSGIMiddleware  # type: ignore[return-value]

    names = ["no agent", "alert every one", "windowed alerts", "alerts disabled"]
    results: dict[str, list[float]] = {name: [] for name in names}
    statuses: dict[str, str] = {}
    for _ in range(rounds):
        for name in names:
            middleware = configure(name)
            db = sqlite3.connect(":memory:")  # opened after protect(): guarded when protected
            db.execute("CREATE TABLE products (id INTEGER, name TEXT)")
            app = _app(db)
            wrapped = middleware(app) if middleware is not None else app
            rate, status = _serve(wrapped, requests)
            results[name].append(rate)
            statuses[name] = status
            db.close()
    unprotect()
    alerts.removeHandler(handler)
    sink.close()

    baseline = statistics.median(results["no agent"])
    print(f"median of {rounds} interleaved rounds x {requests} requests; Python "
          f"{sys.version.split()[0]}")  # fmt: skip
    print(f"{'configuration':<18} {'status':<14} {'requests/s':>11} {'vs no agent':>12}")
    for name in names:
        rate = statistics.median(results[name])
        print(f"{name:<18} {statuses[name]:<14} {rate:>11,.0f} {rate / baseline:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
