"""Cost of each database driver's guard per execute(), against the real servers.

Method: a small table (100 rows) on the local PostgreSQL and MariaDB servers; a SELECT by
primary key that also carries a string literal, built fresh for every call (an f-string with
the call number), run and fetched through each driver:

  psycopg 3, psycopg2, asyncpg     PostgreSQL at 127.0.0.1:5432
  PyMySQL, mysqlclient, aiomysql   MariaDB at 127.0.0.1:3306

Each driver has one connection, opened under ``rasp.protect()`` and timed alternately with
the agent removed (``rasp.unprotect()``, the baseline) and installed (the guarded side).
One connection, because the latency of a loopback round trip depends on where the
scheduler put the server's process or thread: two connections of the same driver can
differ by ~90 us for minutes. psycopg2 is guarded at connect (its types are C types), so
its baseline is a cursor of the driver's own class made directly on that connection.
Many short rounds are interleaved, alternating which side goes first; the added column is
the median of the paired differences of adjacent rounds (which cancels the moment-to-moment
swings of a shared machine), the baseline and guarded columns the medians of each side.
Scenarios:

  outside a request      start-up code, cron jobs: no request context
  browser GET, no match  a realistic request (headers, a session cookie, four parameters,
                         parsed by the agent's own WSGI source parser), none of its inputs
                         in the statement
  browser GET, literal   the same request, its search text inside the statement's string
                         literal (the detector scans the statement and judges it)

Before timing, each driver's guarded connection is sent one injection inside a request: the
``guard`` column says whether it was blocked (``NO`` means the driver is not guarded, and its
figures measure nothing). Run: ``python benchmarks/drivers_overhead.py`` (``--quick`` for a
shorter run, ``--drivers psycopg,pymysql`` for some of them). Tables are named ``h10_*``
and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlite_overhead import _browser_context

import rasp
from rasp import AttackBlocked, Config, protect, unprotect
from rasp.context import _CURRENT, RequestContext, UserInput

POSTGRES_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
TABLE = f"h10_items_{os.getpid()}"
ROWS = 100
VALUE = "red chair, oak"  # lands in the statement's literal in the "literal" scenario
ATTACK = "1 OR 1=1"
WARM_CALLS = 10  # untimed, after each switch of the agent


def _statement(i: int, value: str = VALUE) -> str:
    return f"SELECT id, name, price FROM {TABLE} WHERE id = {i % ROWS + 1} AND name <> '{value}'"


# --- the drivers: connect, run one statement, close -----------------------------------------

Run = Callable[[str], Any]  # statement -> rows (sync) or awaitable rows (async)


@dataclass
class Driver:
    name: str
    module: str
    server: str  # "postgresql" or "mariadb"
    connect: Callable[[], Any]  # (baseline run, guarded run, close), sync or awaitable
    is_async: bool = False


def _psycopg() -> tuple[Run, Run, Callable[[], None]]:
    import psycopg

    connection = psycopg.connect(POSTGRES_DSN, autocommit=True)
    cursor = connection.cursor()

    def run(sql: str) -> Any:
        cursor.execute(sql)
        return cursor.fetchall()

    return run, run, connection.close


def _psycopg2() -> tuple[Run, Run, Callable[[], None]]:
    import psycopg2
    import psycopg2.extensions

    # Guarded at connect (C types): the connection opened under protect() gives guarded
    # cursors; the driver's own cursor class, made directly, is the unguarded baseline on
    # the same connection.
    connection = psycopg2.connect(POSTGRES_DSN)
    connection.autocommit = True
    plain, guarded = psycopg2.extensions.cursor(connection), connection.cursor()
    assert type(guarded) is not psycopg2.extensions.cursor, "psycopg2 is not guarded"

    def run_plain(sql: str) -> Any:
        plain.execute(sql)
        return plain.fetchall()

    def run_guarded(sql: str) -> Any:
        guarded.execute(sql)
        return guarded.fetchall()

    return run_plain, run_guarded, connection.close


async def _asyncpg() -> tuple[Run, Run, Callable[[], Awaitable[None]]]:
    import asyncpg

    connection = await asyncpg.connect(**POSTGRES)
    return connection.fetch, connection.fetch, connection.close


def _pymysql() -> tuple[Run, Run, Callable[[], None]]:
    import pymysql

    connection = pymysql.connect(**MARIADB, autocommit=True)
    cursor = connection.cursor()

    def run(sql: str) -> Any:
        cursor.execute(sql)
        return cursor.fetchall()

    return run, run, connection.close


def _mysqldb() -> tuple[Run, Run, Callable[[], None]]:
    import MySQLdb

    connection = MySQLdb.connect(**MARIADB)
    connection.autocommit(True)
    cursor = connection.cursor()

    def run(sql: str) -> Any:
        cursor.execute(sql)
        return cursor.fetchall()

    return run, run, connection.close


async def _aiomysql() -> tuple[Run, Run, Callable[[], Awaitable[None]]]:
    import aiomysql

    params = {key: value for key, value in MARIADB.items() if key != "database"}
    connection = await aiomysql.connect(**params, db=MARIADB["database"], autocommit=True)
    cursor = await connection.cursor()

    async def run(sql: str) -> Any:
        await cursor.execute(sql)
        return await cursor.fetchall()

    async def close() -> None:
        await cursor.close()
        connection.close()

    return run, run, close


DRIVERS = [
    Driver("psycopg 3", "psycopg", "postgresql", _psycopg),
    Driver("psycopg2", "psycopg2", "postgresql", _psycopg2),
    Driver("asyncpg", "asyncpg", "postgresql", _asyncpg, is_async=True),
    Driver("PyMySQL", "pymysql", "mariadb", _pymysql),
    Driver("mysqlclient", "MySQLdb", "mariadb", _mysqldb),
    Driver("aiomysql", "aiomysql", "mariadb", _aiomysql, is_async=True),
]


# --- the table -------------------------------------------------------------------------------


def _create_tables(servers: set[str]) -> None:
    rows = ", ".join(f"({i}, 'item {i}', {i * 1.25:.2f}, {i % 7})" for i in range(1, ROWS + 1))
    if "postgresql" in servers:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
            connection.execute(
                f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, name text NOT NULL, "
                "price numeric(10, 2) NOT NULL, category_id integer NOT NULL)"
            )
            connection.execute(f"INSERT INTO {TABLE} VALUES {rows}")
            connection.execute(f"ANALYZE {TABLE}")
    if "mariadb" in servers:
        import pymysql

        connection = pymysql.connect(**MARIADB, autocommit=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, name varchar(100) NOT NULL, "
                    "price decimal(10, 2) NOT NULL, category_id integer NOT NULL) ENGINE=InnoDB"
                )
                cursor.execute(f"INSERT INTO {TABLE} VALUES {rows}")
        finally:
            connection.close()


def _drop_tables(servers: set[str]) -> None:
    if "postgresql" in servers:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
    if "mariadb" in servers:
        import pymysql

        connection = pymysql.connect(**MARIADB, autocommit=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        finally:
            connection.close()


# --- timing ----------------------------------------------------------------------------------


def _time_sync(run: Run, calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        run(_statement(i))
    return (time.perf_counter() - start) / calls


async def _time_async(run: Run, calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        await run(_statement(i))
    return (time.perf_counter() - start) / calls


class _Bench:
    """Runs a driver's calls, sync or on one event loop, with a request context set."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.loop = asyncio.new_event_loop() if driver.is_async else None

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        if self.loop is None:
            return function(*args)
        return self.loop.run_until_complete(function(*args))

    def time(self, run: Run, calls: int, context: RequestContext | None) -> float:
        # The task that run_until_complete creates copies the context as it is now.
        token = _CURRENT.set(context)
        try:
            timer = _time_async if self.loop is not None else _time_sync
            return float(self.call(timer, run, calls))
        finally:
            _CURRENT.reset(token)

    def blocks(self, run: Run) -> bool:
        """Whether an injection sent inside a request is blocked (the guard is there)."""
        context = RequestContext("GET", "/items", lambda _ctx: [UserInput("query", "id", ATTACK)])
        token = _CURRENT.set(context)
        try:
            if self.loop is None:
                run(_statement(0).replace("id = 1 ", f"id = {ATTACK} "))
            else:

                async def attack() -> None:
                    await run(_statement(0).replace("id = 1 ", f"id = {ATTACK} "))

                self.loop.run_until_complete(attack())
        except AttackBlocked:
            return True
        finally:
            _CURRENT.reset(token)
        return False

    def close(self) -> None:
        if self.loop is not None:
            self.loop.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    parser.add_argument("--drivers", help="comma-separated modules, e.g. psycopg,pymysql")
    parser.add_argument(
        "--aa",
        action="store_true",
        help="A/A run: time the guarded side with the agent removed too, so the added column "
        "shows the noise floor of the machine",
    )
    args = parser.parse_args()
    # The guard check below raises one alert per driver: keep it out of the table.
    logging.getLogger("rasp.alerts").addHandler(logging.NullHandler())
    logging.getLogger("rasp.alerts").propagate = False
    rounds, calls = (40, 25) if args.quick else (200, 50)

    drivers = DRIVERS
    if args.drivers:
        wanted = set(args.drivers.split(","))
        drivers = [d for d in DRIVERS if d.module in wanted]
    available = []
    for driver in drivers:
        try:
            importlib.import_module(driver.module)
        except ImportError as error:
            print(f"skipping {driver.name}: {error}", file=sys.stderr)
        else:
            available.append(driver)
    servers = {d.server for d in available}

    scenarios: list[tuple[str, RequestContext | None]] = [
        ("outside a request", None),
        ("browser GET, no match", _browser_context("oak chair")),
        ("browser GET, match in literal", _browser_context(VALUE)),
    ]

    _create_tables(servers)
    try:
        print(
            f"SELECT by primary key (~90 chars, one literal), execute + fetchall, on loopback; "
            f"{rounds} interleaved rounds x {calls} calls per side; Python "
            f"{sys.version.split()[0]}, rasp {rasp.__version__}"
        )
        print(
            f"{'driver':<13}{'guard':<7}{'scenario':<32}{'baseline us':>12}{'guarded us':>12}"
            f"{'added us':>10}{'ratio':>8}"
        )
        for driver in available:
            _bench_driver(driver, scenarios, rounds, calls, args.aa)
    finally:
        unprotect()
        _drop_tables(servers)
    return 0


def _bench_driver(
    driver: Driver,
    scenarios: list[tuple[str, RequestContext | None]],
    rounds: int,
    calls: int,
    aa: bool = False,
) -> None:
    bench = _Bench(driver)
    protect(Config())
    plain_run, guarded_run, close = bench.call(driver.connect)
    try:
        guard = "yes" if bench.blocks(guarded_run) else "NO"
        bench.time(plain_run, calls // 4, None)  # warm both connections and caches
        bench.time(guarded_run, calls // 4, None)
        for name, context in scenarios:
            base_times, guard_times = [], []
            for round_ in range(rounds):
                # Alternate which side goes first, so neither always follows the other.
                for guarded in (False, True) if round_ % 2 == 0 else (True, False):
                    # Both sides run protect() and unprotect(), then a few untimed calls:
                    # protect() walks the heap (gc.get_objects, to warn about sqlite3
                    # connections opened before it), which leaves the CPU caches cold.
                    if guarded and not aa:
                        unprotect()
                        protect(Config())
                    else:
                        protect(Config())
                        unprotect()
                    run = guarded_run if guarded else plain_run
                    bench.time(run, WARM_CALLS, context)
                    (guard_times if guarded else base_times).append(bench.time(run, calls, context))
            base = statistics.median(base_times)
            guarded = statistics.median(guard_times)
            # Paired differences of adjacent rounds cancel the slow drifts of a shared server.
            added = statistics.median(g - b for g, b in zip(guard_times, base_times, strict=True))
            print(
                f"{driver.name:<13}{guard:<7}{name:<32}{base * 1e6:>12.1f}{guarded * 1e6:>12.1f}"
                f"{added * 1e6:>10.1f}{1 + added / base:>8.3f}",
                flush=True,
            )
    finally:
        unprotect()
        bench.call(close)
        bench.close()


if __name__ == "__main__":
    raise SystemExit(main())
