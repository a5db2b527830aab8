from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sql_cases import PG_ATTACK, PG_CANARY, pg_attacks, pg_rows, serving

import rasp
from rasp.context import RequestContext
from rasp.sinks import psycopg as sink

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402
from psycopg.pq import TransactionStatus  # noqa: E402

# One table per process: other sessions may run this module against the same server.
TABLE = f"h5_pg3_canary_{os.getpid()}"
CANARY = PG_CANARY
ATTACK = PG_ATTACK
HONEST_SQL = f"UPDATE {TABLE} SET name = 'carol' WHERE name = 'alice'"

ATTACKS = pg_attacks(TABLE)


def _attack(kind: str) -> tuple[str, str]:
    value, template = ATTACKS[kind]
    return value, template.format(t=TABLE, v=value)


ATTACK_SQL = _attack("quote")[1]


request = serving


rows = partial(pg_rows, table=TABLE)


@pytest.fixture
def conn(protected: rasp.Config, pg_canary: str) -> Iterator[Any]:
    with psycopg.connect(pg_canary, autocommit=True) as connection:
        yield connection


def _copy(cur: Any, statement: str) -> None:
    with cur.copy(f"COPY ({statement} RETURNING id) TO STDOUT") as copy:
        for _ in copy:
            pass


SYNC_METHODS: dict[str, Callable[[Any, str], Any]] = {
    "Cursor.execute": lambda conn, q: conn.cursor().execute(q),
    "Connection.execute": lambda conn, q: conn.execute(q),
    "Cursor.executemany": lambda conn, q: conn.cursor().executemany(q, [()]),
    "Cursor.copy": lambda conn, q: _copy(conn.cursor(), q),
    "Cursor.stream": lambda conn, q: list(conn.cursor().stream(f"{q} RETURNING id")),
    "ClientCursor.execute": lambda conn, q: psycopg.ClientCursor(conn).execute(q),
    "RawCursor.execute": lambda conn, q: psycopg.RawCursor(conn).execute(q),
}


@pytest.mark.parametrize("method", sorted(SYNC_METHODS))
def test_every_sync_method_blocks_and_the_statement_never_runs(conn: Any, method: str) -> None:
    run = SYNC_METHODS[method]
    with request(ATTACK) as context:
        with pytest.raises(rasp.AttackBlocked) as info:
            run(conn, ATTACK_SQL)
        assert rows(conn.info.dsn) == CANARY
        run(conn, HONEST_SQL)  # honest statement, same method, same request: runs
    assert rows(conn.info.dsn) == {1: "carol", 2: "bob"}
    incident = info.value.incident
    assert (incident.sink, incident.dialect) == ("psycopg", "postgresql")
    assert incident.input_source == "query.name"
    assert incident.code_file == __file__  # the app's line, not psycopg's
    assert context.blocked is incident


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_every_attack_kind_is_blocked(conn: Any, kind: str) -> None:
    value, statement = _attack(kind)
    with request(value), pytest.raises(rasp.AttackBlocked):
        conn.execute(statement)
    assert rows(conn.info.dsn) == CANARY


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_attacks_are_real_outside_a_request(conn: Any, kind: str) -> None:
    # No request, nothing blocked: and each attack really does damage when it runs.
    _, statement = _attack(kind)
    conn.execute(statement)
    assert rows(conn.info.dsn) != CANARY


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_bound_parameters_pass_and_store_the_attack_intact(conn: Any, kind: str) -> None:
    value, _ = _attack(kind)
    with request(value):
        conn.execute(f"INSERT INTO {TABLE} (id, name) VALUES (%s, %s)", (3, value))
        conn.cursor().executemany(f"INSERT INTO {TABLE} (id, name) VALUES (%s, %s)", [(4, value)])
        found = conn.execute(f"SELECT id FROM {TABLE} WHERE name = %s", (value,)).fetchall()
        with pytest.raises(rasp.AttackBlocked):  # the same input concatenated: blocked
            conn.execute(_attack(kind)[1])
    assert found == [(3,), (4,)]
    assert rows(conn.info.dsn) == {**CANARY, 3: value, 4: value}


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_composed_with_literal_passes_and_stores_intact(conn: Any, kind: str) -> None:
    value, _ = _attack(kind)
    query = sql.SQL("INSERT INTO {} (id, name) VALUES (3, {})").format(
        sql.Identifier(TABLE), sql.Literal(value)
    )
    with request(value):
        conn.execute(query)
        with pytest.raises(rasp.AttackBlocked):  # the same input concatenated: blocked
            conn.execute(_attack(kind)[1])
    assert rows(conn.info.dsn) == {**CANARY, 3: value}


def test_string_built_sql_objects_are_blocked(conn: Any) -> None:
    built = sql.SQL(f"UPDATE {TABLE} SET name = 'pwned' WHERE name = '" + ATTACK + "'")
    composed = sql.SQL("UPDATE {} SET name = 'pwned' WHERE name = '" + ATTACK + "'").format(
        sql.Identifier(TABLE)
    )
    with request(ATTACK):
        for query in (built, composed):
            with pytest.raises(rasp.AttackBlocked):
                conn.execute(query)
            with pytest.raises(rasp.AttackBlocked):
                conn.cursor().executemany(query, [()])
    assert rows(conn.info.dsn) == CANARY


def test_bytes_statement_is_blocked(conn: Any) -> None:
    with request(ATTACK), pytest.raises(rasp.AttackBlocked):
        conn.execute(ATTACK_SQL.encode())
    assert rows(conn.info.dsn) == CANARY


def test_render_gives_the_text_psycopg_sends(conn: Any) -> None:
    composed = sql.SQL("SELECT {} FROM {}").format(sql.Literal("O'Brien"), sql.Identifier("t"))
    assert sink.render(composed, conn.cursor()) == "SELECT 'O''Brien' FROM \"t\""
    assert sink.render(composed, conn) == "SELECT 'O''Brien' FROM \"t\""
    assert sink.render(sql.SQL("SELECT 1"), None) == "SELECT 1"
    assert sink.render(object(), conn) is None
    assert sink.render(sql.Literal(object()), conn) is None  # unadaptable: psycopg fails too


def test_server_cursor_statement_never_reaches_the_server(
    protected: rasp.Config, pg_canary: str
) -> None:
    with psycopg.connect(pg_canary) as conn:  # not autocommit: anything sent opens a transaction
        with request(ATTACK):
            with conn.cursor(name="h5_sc") as cur, pytest.raises(rasp.AttackBlocked):
                cur.execute(f"SELECT id FROM {TABLE} WHERE name = '{ATTACK}'")
            assert conn.info.transaction_status is TransactionStatus.IDLE
            with conn.cursor(name="h5_sc2") as cur:
                cur.execute(f"SELECT id FROM {TABLE} WHERE name = 'bob'")
                assert cur.fetchall() == [(2,)]
            assert conn.info.transaction_status is TransactionStatus.INTRANS


def test_outside_a_request_nothing_is_blocked(conn: Any) -> None:
    query = f"SELECT id FROM {TABLE} WHERE name = '{ATTACK}'"
    assert len(conn.execute(query).fetchall()) == 2
    with request(ATTACK), pytest.raises(rasp.AttackBlocked):
        conn.execute(query)


def test_suppressed_context_is_not_checked(conn: Any) -> None:
    with request(ATTACK) as context:
        context.suppressed += 1
        conn.execute(ATTACK_SQL)
        context.suppressed -= 1
        with pytest.raises(rasp.AttackBlocked):
            conn.execute(ATTACK_SQL)
    assert rows(conn.info.dsn) == {1: "pwned", 2: "pwned"}


# --- async ------------------------------------------------------------------------------


async def _acopy(cur: Any, statement: str) -> None:
    async with cur.copy(f"COPY ({statement} RETURNING id) TO STDOUT") as copy:
        async for _ in copy:
            pass


async def _astream(cur: Any, statement: str) -> None:
    async for _ in cur.stream(f"{statement} RETURNING id"):
        pass


ASYNC_METHODS: dict[str, Callable[[Any, str], Awaitable[Any]]] = {
    "AsyncCursor.execute": lambda conn, q: conn.cursor().execute(q),
    "AsyncConnection.execute": lambda conn, q: conn.execute(q),
    "AsyncCursor.executemany": lambda conn, q: conn.cursor().executemany(q, [()]),
    "AsyncCursor.copy": lambda conn, q: _acopy(conn.cursor(), q),
    "AsyncCursor.stream": lambda conn, q: _astream(conn.cursor(), q),
    "AsyncClientCursor.execute": lambda conn, q: psycopg.AsyncClientCursor(conn).execute(q),
}


@pytest.mark.parametrize("method", sorted(ASYNC_METHODS))
def test_every_async_method_blocks_and_the_statement_never_runs(
    protected: rasp.Config, pg_canary: str, method: str
) -> None:
    run = ASYNC_METHODS[method]

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(pg_canary, autocommit=True) as conn:
            with request(ATTACK):
                with pytest.raises(rasp.AttackBlocked):
                    await run(conn, ATTACK_SQL)
                assert rows(pg_canary) == CANARY
                await run(conn, HONEST_SQL)

    asyncio.run(main())
    assert rows(pg_canary) == {1: "carol", 2: "bob"}


def test_async_server_cursor_never_reaches_the_server(
    protected: rasp.Config, pg_canary: str
) -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(pg_canary) as conn:
            with request(ATTACK):
                async with conn.cursor(name="h5_asc") as cur:
                    with pytest.raises(rasp.AttackBlocked):
                        await cur.execute(f"SELECT id FROM {TABLE} WHERE name = '{ATTACK}'")
                assert conn.info.transaction_status is TransactionStatus.IDLE
                async with conn.cursor(name="h5_asc2") as cur:
                    await cur.execute(f"SELECT id FROM {TABLE} WHERE name = 'bob'")
                    assert await cur.fetchall() == [(2,)]

    asyncio.run(main())


def test_async_bound_parameters_and_literals_pass(protected: rasp.Config, pg_canary: str) -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(pg_canary, autocommit=True) as conn:
            with request(ATTACK):
                await conn.execute(f"INSERT INTO {TABLE} VALUES (%s, %s)", (3, ATTACK))
                await conn.execute(
                    sql.SQL("INSERT INTO {} VALUES (4, {})").format(
                        sql.Identifier(TABLE), sql.Literal(ATTACK)
                    )
                )
                with pytest.raises(rasp.AttackBlocked):
                    await conn.execute(ATTACK_SQL)

    asyncio.run(main())
    assert rows(pg_canary) == {**CANARY, 3: ATTACK, 4: ATTACK}


# --- each statement is checked exactly once ---------------------------------------------


def _monitor_sync(conn: Any, how: str) -> None:
    if how == "server-cursor":
        with conn.cursor(name="h5_mon") as cur:
            cur.execute(f"SELECT id FROM {TABLE} WHERE name = '{ATTACK}'")
    else:
        SYNC_METHODS[how](conn, ATTACK_SQL)


@pytest.mark.parametrize(
    "how", ["Connection.execute", "Cursor.execute", "ClientCursor.execute", "server-cursor"]
)
def test_monitor_mode_reports_each_statement_once(pg_canary: str, how: str) -> None:
    rasp.protect(rasp.Config(mode=rasp.Mode.MONITOR))
    try:
        with psycopg.connect(pg_canary, autocommit=how != "server-cursor") as conn:
            with request(ATTACK) as context:
                _monitor_sync(conn, how)
    finally:
        rasp.unprotect()
    assert [i.action for i in context.incidents] == ["monitored"]


def test_monitor_mode_reports_async_connection_execute_once(pg_canary: str) -> None:
    async def main() -> RequestContext:
        async with await psycopg.AsyncConnection.connect(pg_canary, autocommit=True) as conn:
            with request(ATTACK) as context:
                await conn.execute(ATTACK_SQL)
            return context

    rasp.protect(rasp.Config(mode=rasp.Mode.MONITOR))
    try:
        context = asyncio.run(main())
    finally:
        rasp.unprotect()
    assert len(context.incidents) == 1
    assert rows(pg_canary) == {1: "pwned", 2: "pwned"}  # monitor mode lets it run


# --- install / uninstall ----------------------------------------------------------------

PATCHED = [
    (cls, name)
    for cls in ("Cursor", "AsyncCursor")
    for name in ("execute", "executemany", "copy", "stream")
] + [("ServerCursor", "execute"), ("AsyncServerCursor", "execute")]


def test_unprotect_restores_the_originals(pg_canary: str) -> None:
    rasp.unprotect()
    originals = {(c, n): vars(getattr(psycopg, c))[n] for c, n in PATCHED}
    rasp.protect(rasp.Config())
    try:
        for (c, n), original in originals.items():
            replacement = vars(getattr(psycopg, c))[n]
            assert replacement is not original
            assert replacement.__wrapped__ is original
        ours = [name for name in rasp.sinks.installed() if name.startswith("psycopg.")]
        assert sorted(ours) == sorted(f"psycopg.{c}.{n}" for c, n in PATCHED)
    finally:
        rasp.unprotect()
    for (c, n), original in originals.items():
        assert vars(getattr(psycopg, c))[n] is original
    with psycopg.connect(pg_canary, autocommit=True) as conn, request(ATTACK):
        conn.execute(ATTACK_SQL)  # unguarded now: it runs
    assert rows(pg_canary) == {1: "pwned", 2: "pwned"}


_IMPORT_AFTER_PROTECT = """
import rasp
from rasp.context import _CURRENT, RequestContext, UserInput
rasp.protect(rasp.Config())
import psycopg
ctx = RequestContext("GET", "/", lambda c: [UserInput("query", "q", "x' OR '1'='1")])
token = _CURRENT.set(ctx)
try:
    with psycopg.connect({dsn!r}) as conn:
        conn.execute("SELECT 'x' OR '1'='1'")
except rasp.AttackBlocked:
    print("blocked")
finally:
    _CURRENT.reset(token)
"""


def test_psycopg_imported_after_protect_is_guarded(postgres_dsn: str) -> None:
    code = textwrap.dedent(_IMPORT_AFTER_PROTECT.format(dsn=postgres_dsn))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parent,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "blocked"
