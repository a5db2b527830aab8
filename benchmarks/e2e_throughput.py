"""Requests per second of a small DB-heavy WSGI app under gunicorn, with and without rasp.

Method: one app (this module, imported by gunicorn) answers a product search with five
PostgreSQL queries through psycopg 3 (a session lookup and a count with bound parameters,
a search built by string formatting with two inputs inside its literals, a category list
without input, a join of the top item's reviews), as a JSON page. It runs three ways, each
as its own gunicorn (2 sync workers) on loopback, all three started before the first round:

  none   the app alone; rasp is never imported
  off    the same module wrapped by rasp with RASP_MODE=off (import + pass-through)
  block  the same module wrapped by rasp with RASP_MODE=block (every statement checked)

Load comes from wrk in its own process (a Python client with threads if wrk is missing)
sending a browser-like GET (usual headers, a session cookie, four query parameters). The
sync workers close each connection after its answer, so the client reconnects; with the
keep-alive gthread workers (``--worker-class gthread``) one worker can end up holding most
of the connections, which halves a round's throughput at random. Fixed-duration rounds are
interleaved, their order rotated (none off block, off block none, block none off, ...); the
median throughput, the median of the rounds' p50/p99 latencies and the median ratio to
``none`` in the same round are reported. Before timing, an injection is sent to each
server: ``block`` must answer 403 and the others 200, or the figures measure nothing.

Run: ``python benchmarks/e2e_throughput.py`` (``--quick``: under 2 minutes). Tables are
named ``h10_<pid>_*`` and dropped at the end.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any
from urllib.parse import parse_qs

DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"

# --- the app (imported by gunicorn) ----------------------------------------------------------

_local = threading.local()


def _connection() -> Any:
    connection = getattr(_local, "connection", None)
    if connection is None:
        import psycopg

        connection = psycopg.connect(os.environ.get("BENCH_DSN", DSN), autocommit=True)
        _local.connection = connection
    return connection


def shop(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    prefix = os.environ["BENCH_PREFIX"]
    args = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    q, category = args.get("q", ""), args.get("category", "home")
    sort = args.get("sort", "price") if args.get("sort") in ("price", "name", "id") else "id"
    page = max(1, int(args.get("page", "1")) if args.get("page", "1").isdigit() else 1)
    cookie = environ.get("HTTP_COOKIE", "")
    user_id = 1 + sum(map(ord, cookie)) % 50
    cursor = _connection().cursor()
    try:
        cursor.execute(f"SELECT id, name, email FROM {prefix}users WHERE id = %s", (user_id,))
        user = cursor.fetchone()
        # The app's own string formatting, as in the code rasp is there to protect.
        cursor.execute(
            f"SELECT id, name, price FROM {prefix}products WHERE category = '{category}' "
            f"AND name ILIKE '%{q}%' ORDER BY {sort} LIMIT 20 OFFSET {(page - 1) * 20}"
        )
        products = cursor.fetchall()
        cursor.execute(f"SELECT count(*) FROM {prefix}products WHERE category = %s", (category,))
        (total,) = cursor.fetchone()
        cursor.execute(f"SELECT id, name FROM {prefix}categories ORDER BY name")
        categories = cursor.fetchall()
        top = products[0][0] if products else 1
        cursor.execute(
            f"SELECT r.id, r.author, r.body FROM {prefix}reviews r JOIN {prefix}products p "
            f"ON p.id = r.product_id WHERE p.id = {top} ORDER BY r.id DESC LIMIT 5"
        )
        reviews = cursor.fetchall()
    finally:
        cursor.close()
    body = json.dumps(
        {
            "user": user and user[1],
            "total": total,
            "products": [[i, n, str(p)] for i, n, p in products],
            "categories": categories,
            "reviews": reviews,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


if __name__ != "__main__":
    if os.environ.get("BENCH_AGENT", "none") == "none":
        app: Any = shop
    else:
        import rasp

        app = rasp.wsgi(shop)  # mode from RASP_MODE


# --- the benchmark ---------------------------------------------------------------------------

if __name__ == "__main__":
    import argparse
    import http.client
    import shutil
    import signal
    import socket
    import statistics
    import subprocess
    import sys
    import tempfile
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    HERE = Path(__file__).resolve().parent
    sys.path.insert(0, str(HERE))
    from peer_kit.phases import run_wrk

    PREFIX = f"h10_{os.getpid()}_"
    VARIANTS = {
        "none": {"BENCH_AGENT": "none"},
        "off": {"BENCH_AGENT": "rasp", "RASP_MODE": "off"},
        "block": {"BENCH_AGENT": "rasp", "RASP_MODE": "block"},
    }
    PATH = "/shop/products/search?q=oak+chair&page=1&sort=price&category=home-office"
    ATTACK_PATH = "/shop/products/search?q=x%27+OR+%271%27%3D%271&category=home-office"
    HEADERS = {
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "Accept-Language": "en-US,en;q=0.9",
        "Accept-Encoding": "gzip, deflate, br",
        "Referer": "http://127.0.0.1/shop/products?page=1",
        "Cookie": "session=eyJ1c2VyIjoiYWxpY2UifQ.ZmFrZQ.c2lnbmF0dXJl; theme=dark",
    }

    def create_tables() -> None:
        import psycopg

        categories = ["home-office", "kitchen", "garden", "toys", "books", "tools"]
        with psycopg.connect(DSN, autocommit=True) as db:
            db.execute(f"CREATE TABLE {PREFIX}users (id int PRIMARY KEY, name text, email text)")
            db.execute(f"CREATE TABLE {PREFIX}categories (id int PRIMARY KEY, name text)")
            db.execute(
                f"CREATE TABLE {PREFIX}products (id int PRIMARY KEY, name text, "
                "category text, price numeric(10, 2))"
            )
            db.execute(
                f"CREATE TABLE {PREFIX}reviews (id int PRIMARY KEY, product_id int, "
                "author text, body text)"
            )
            db.execute(f"CREATE INDEX ON {PREFIX}products (category)")
            db.execute(f"CREATE INDEX ON {PREFIX}reviews (product_id)")
            with db.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {PREFIX}users VALUES (%s, %s, %s)",
                    [(i, f"user{i}", f"user{i}@shop.example") for i in range(1, 51)],
                )
                cursor.executemany(
                    f"INSERT INTO {PREFIX}categories VALUES (%s, %s)", list(enumerate(categories))
                )
                words = ["oak", "chair", "desk", "lamp", "pine", "shelf", "walnut", "stool"]
                cursor.executemany(
                    f"INSERT INTO {PREFIX}products VALUES (%s, %s, %s, %s)",
                    [
                        (i, f"{words[i % 8]} {words[i * 3 % 7]} {i}", categories[i % 6], i * 0.75)
                        for i in range(1, 601)
                    ],
                )
                cursor.executemany(
                    f"INSERT INTO {PREFIX}reviews VALUES (%s, %s, %s, %s)",
                    [
                        (i, i % 600 + 1, f"user{i % 50}", "Sturdy and well made. " * 4)
                        for i in range(1, 3001)
                    ],
                )
            db.execute(f"ANALYZE {PREFIX}products")
            db.execute(f"ANALYZE {PREFIX}reviews")

    def drop_tables() -> None:
        import psycopg

        with psycopg.connect(DSN, autocommit=True) as db:
            for table in ("users", "categories", "products", "reviews"):
                db.execute(f"DROP TABLE IF EXISTS {PREFIX}{table}")

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def start(
        variant: str, workdir: Path, worker_class: str
    ) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RASP_")}
        env.update(VARIANTS[variant], BENCH_PREFIX=PREFIX, BENCH_DSN=DSN, PYTHONPATH=str(HERE))
        log = (workdir / f"{variant}.log").open("wb")
        # cwd is a temp dir, so no pyproject.toml [tool.rasp] of the checkout applies.
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "e2e_throughput:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--worker-class",
                worker_class,
                "--threads",
                "1",
                "--log-level",
                "warning",
            ],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status(port, PATH)
                return server, port
            except OSError:
                time.sleep(0.2)
        server.kill()
        raise SystemExit(f"gunicorn ({variant}) did not start; see {workdir / variant}.log")

    def status(port: int, path: str) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=HEADERS)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def wrk(port: int, seconds: float, connections: int) -> dict[str, float]:
        headers = [arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")]
        duration = f"-d{round(seconds)}s"
        url = f"http://127.0.0.1:{port}{PATH}"
        measured = run_wrk([f"-c{connections}", duration, *headers, url])
        return {**measured, "bad": measured.pop("errors")}

    def python_client(port: int, seconds: float, connections: int) -> dict[str, float]:
        """Keep-alive client with threads, for machines without wrk (it caps lower)."""
        latencies: list[float] = []
        bad = [0]
        lock = threading.Lock()
        deadline = time.perf_counter() + seconds

        def worker() -> None:
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine, errors = [], 0
            while (start := time.perf_counter()) < deadline:
                client.request("GET", PATH, headers=HEADERS)
                response = client.getresponse()
                response.read()
                mine.append(time.perf_counter() - start)
                errors += response.status != 200
            client.close()
            with lock:
                latencies.extend(mine)
                bad[0] += errors

        threads = [threading.Thread(target=worker) for _ in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        latencies.sort()
        return {
            "rps": len(latencies) / seconds,
            "p50": latencies[len(latencies) // 2] * 1e3,
            "p99": latencies[int(len(latencies) * 0.99)] * 1e3,
            "bad": float(bad[0]),
            "socket_errors": 0.0,
        }

    def main() -> int:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        parser.add_argument("--quick", action="store_true", help="3 rounds of 6 s (< 2 min)")
        parser.add_argument("--rounds", type=int, help="rounds per variant")
        parser.add_argument("--seconds", type=int, help="seconds per round")
        parser.add_argument("--connections", type=int, default=8, help="client connections")
        parser.add_argument(
            "--worker-class",
            default="sync",
            choices=("sync", "gthread"),
            help="sync: one connection per request, spread evenly by the kernel; gthread (one "
            "thread): keep-alive, but a worker can end up with most of the connections",
        )
        args = parser.parse_args()
        rounds, seconds = (3, 6) if args.quick else (9, 10)
        rounds, seconds = args.rounds or rounds, args.seconds or seconds
        load = wrk if shutil.which("wrk") else python_client

        create_tables()
        servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            with tempfile.TemporaryDirectory(prefix="h10_e2e_") as tmp:
                for variant in VARIANTS:
                    servers[variant] = start(variant, Path(tmp), args.worker_class)
                for variant, (_, port) in servers.items():
                    code = status(port, ATTACK_PATH)
                    expected = 403 if variant == "block" else 200
                    note = "" if code == expected else "  <-- UNEXPECTED: figures are void"
                    print(f"injection sent to {variant!r}: HTTP {code}{note}")
                    load(port, 2, args.connections)  # warm up: connections, plans, caches
                results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
                for round_ in range(rounds):
                    # Rotate the order, so each variant takes each place in turn.
                    names = list(VARIANTS)
                    order = names[round_ % 3 :] + names[: round_ % 3]
                    for variant in order:
                        results[variant].append(
                            load(servers[variant][1], seconds, args.connections)
                        )
                    print(
                        f"round {round_ + 1}/{rounds}: "
                        + ", ".join(f"{v} {results[v][-1]['rps']:.0f} rps" for v in VARIANTS),
                        flush=True,
                    )
        finally:
            for server, _ in servers.values():
                server.send_signal(signal.SIGTERM)
            for server, _ in servers.values():
                try:
                    server.wait(15)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            drop_tables()

        print(
            f"\n{load.__name__}, {args.connections} connections, {rounds} rounds x {seconds} s, "
            f"gunicorn 2 {args.worker_class} workers, Python {sys.version.split()[0]}"
        )
        print(
            f"{'variant':<8}{'req/s':>9}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}"
            f"{'sock err':>9}"
        )
        for variant, runs in results.items():
            rps = statistics.median(r["rps"] for r in runs)
            # The ratio pairs each round with the no-agent run of the same round.
            ratio = statistics.median(
                r["rps"] / n["rps"] for r, n in zip(runs, results["none"], strict=True)
            )
            p50 = statistics.median(r["p50"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            bad = sum(r["bad"] for r in runs)
            errors = sum(r["socket_errors"] for r in runs)
            print(
                f"{variant:<8}{rps:>9.0f}{ratio:>8.3f}{p50:>9.2f}{p99:>9.2f}{bad:>9.0f}"
                f"{errors:>9.0f}"
            )
        return 0

    raise SystemExit(main())
