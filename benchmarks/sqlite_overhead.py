"""Cost of the sqlite3 guard per execute(), as microseconds added and as ratios.

Method: one in-memory SQLite database; a statement of about 100 characters, built fresh for
every call (so no cache can help); the same call timed on an unguarded connection and on a
guarded one, in four situations:

  outside      no request is being served (startup, cron jobs)
  browser GET  a realistic request (headers, a session cookie, four parameters, parsed
               by the agent's own source parser), its search text absent from or
               inside a string literal of the statement
  no match     inside a request whose inputs do not occur in the statement
  match        inside a request whose input lies in a string literal of the statement
               (the detector scans the statement and judges the occurrence)
  (each with 20 and with 1,000 varied inputs in the request: words joined by many kinds
  of punctuation, none of them plain words, which is harder than real traffic)

Rounds are interleaved (baseline, guarded, baseline, ...) and the median of the rounds is
reported, because these machines are noisy. Run: ``python benchmarks/sqlite_overhead.py``
(``--quick`` for a shorter run).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import string
import sys
import time
from collections.abc import Callable
from urllib.parse import urlencode

from rasp import Config, protect, unprotect
from rasp.context import _CURRENT, RequestContext, UserInput
from rasp.sources import wsgi_context


def _statement(i: int, value: str) -> str:
    return (
        f"SELECT id, name, price FROM products WHERE name = '{value}' "
        f"AND category_id = {i % 7} ORDER BY price LIMIT 20"
    )


def _context(inputs: list[UserInput]) -> RequestContext:
    return RequestContext("GET", "/products", lambda _ctx: inputs)


_SEPARATORS = [" ", "-", ".", "@", "/", ", ", ":", "_", "=", "+", "%20", "'"]


def _inputs(count: int, match: str | None) -> list[UserInput]:
    """Varied inputs, as a real request has: words joined by many kinds of punctuation, so
    no two share an easy prefix (uniform inputs would flatter the matcher)."""
    rng = random.Random(count)
    inputs = []
    for i in range(count - 1):
        words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9)))
                 for _ in range(rng.randint(1, 3))] + [str(i)]  # fmt: skip
        text = rng.choice(_SEPARATORS).join(words)
        inputs.append(UserInput("query", f"field{i}", text))
    inputs.append(UserInput("query", "q", match if match is not None else "absent text"))
    return inputs


def _browser_context(search: str) -> RequestContext:
    """A browser's GET with the usual headers, a session cookie and a few parameters,
    collected by the agent's own WSGI source parser (16 inputs, 11 of them not plain words).
    """
    query = urlencode({"q": search, "page": "2", "sort": "price", "category": "home-office"})
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/shop/products/search",
        "QUERY_STRING": query,
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/126.0.0.0 Safari/537.36",
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate, br",
        "HTTP_CONNECTION": "keep-alive",
        "HTTP_REFERER": "http://127.0.0.1:8000/shop/products?page=1",
        "HTTP_COOKIE": "session=eyJ1c2VyIjoiYWxpY2UifQ.ZmFrZQ.c2lnbmF0dXJl; theme=dark",
    }
    return wsgi_context(environ, None)


def _time(call: Callable[[int], object], calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        call(i)
    return (time.perf_counter() - start) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    args = parser.parse_args()
    rounds, calls = (5, 2000) if args.quick else (15, 5000)

    plain = sqlite3.connect(":memory:")
    protect(Config())
    guarded = sqlite3.connect(":memory:")
    for db in (plain, guarded):
        db.execute("CREATE TABLE products (id INTEGER, name TEXT, price REAL, category_id INT)")
        db.execute("INSERT INTO products VALUES (1, 'red chair', 10.0, 1)")

    value = "red chair, oak"

    def baseline(i: int) -> object:
        return plain.execute(_statement(i, value)).fetchall()

    def checked(i: int) -> object:
        return guarded.execute(_statement(i, value)).fetchall()

    scenarios: list[tuple[str, RequestContext | None]] = [("outside a request", None)]
    scenarios.append(("browser GET, no match", _browser_context("oak chair")))
    scenarios.append(("browser GET, match in literal", _browser_context(value)))
    for count in (20, 1000):
        scenarios.append((f"no match, {count} varied inputs", _context(_inputs(count, None))))
        scenarios.append(
            (f"match in literal, {count} varied inputs", _context(_inputs(count, value)))
        )

    print(
        f"sqlite3 execute() of a fresh ~100-char statement; median of {rounds} interleaved "
        f"rounds x {calls} calls; Python {sys.version.split()[0]}"
    )
    print(f"{'scenario':<40}{'baseline us':>12}{'guarded us':>12}{'added us':>10}{'ratio':>8}")
    for name, context in scenarios:
        base_times, guard_times = [], []
        for _ in range(rounds):
            base_times.append(_time(baseline, calls))
            token = _CURRENT.set(context)
            try:
                guard_times.append(_time(checked, calls))
            finally:
                _CURRENT.reset(token)
        base, guard = statistics.median(base_times), statistics.median(guard_times)
        print(
            f"{name:<40}{base * 1e6:>12.2f}{guard * 1e6:>12.2f}"
            f"{(guard - base) * 1e6:>10.2f}{guard / base:>8.2f}"
        )
    unprotect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
