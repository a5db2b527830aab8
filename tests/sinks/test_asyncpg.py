from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

import rasp
from rasp.context import _CURRENT, RequestContext, UserInput

asyncpg = pytest.importorskip("asyncpg", reason="asyncpg is not installed")
psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")

PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
T = TypeVar("T")
Run = Callable[[Any, str, str], Awaitable[object]]
"""(connection or pool, table, attacked WHERE condition) -> runs a statement with it."""


class Canary:
    """A table of this test's own (prefix h7_), read back through a separate connection."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.table = f"h7_canary_{uuid.uuid4().hex[:10]}"

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def rows(self) -> list[tuple[Any, ...]] | None:
        """Every row, or None when the table is gone."""
        found = self.sql(f"SELECT to_regclass('{self.table}') IS NOT NULL")
        if not found[0][0]:
            return None
        return self.sql(f"SELECT id, name, note FROM {self.table} ORDER BY id")


INTACT = [(1, "alice", "intact")]


@pytest.fixture
def canary(postgres_dsn: str) -> Iterator[Canary]:
    table = Canary(postgres_dsn)
    table.sql(f"CREATE TABLE {table.table} (id int PRIMARY KEY, name text, note text)")
    table.sql(f"INSERT INTO {table.table} VALUES (1, 'alice', 'intact')")
    yield table
    table.sql(f"DROP TABLE IF EXISTS {table.table}")


def attacks(table: str) -> list[tuple[str, str]]:
    """(user input, the WHERE condition an app builds by pasting it in); each one, when it
    runs, matches the canary row (or drops the table)."""
    return [
        ("x' OR '1'='1", "name = 'x' OR '1'='1'"),
        ("0 OR 1=1", "id = 0 OR 1=1"),
        (f"0; DROP TABLE {table} --", f"id = 0; DROP TABLE {table} --"),
        ("x$$ OR $$1$$=$$1", "name = $$x$$ OR $$1$$=$$1$$"),
        ("0 OR 1=(SELECT 1 FROM pg_sleep(0))", "id = 0 OR 1=(SELECT 1 FROM pg_sleep(0))"),
    ]


def in_request(value: str, main: Callable[[], Awaitable[T]]) -> tuple[T, RequestContext]:
    """Run ``main`` under asyncio.run while serving a request whose input is ``value``:
    asyncio.run copies the current context into its main task, as an ASGI server's does."""
    context = RequestContext("GET", "/", lambda c: [UserInput("query", "q", value)])
    token = _CURRENT.set(context)
    try:
        return asyncio.run(main()), context  # type: ignore[arg-type]
    finally:
        _CURRENT.reset(token)


def update(table: str, where: str) -> str:
    return f"UPDATE {table} SET note = 'pwned' WHERE {where} RETURNING id"


async def _copy_out(db: Any, query: str, *args: Any) -> object:
    chunks: list[bytes] = []

    async def output(chunk: bytes) -> None:
        chunks.append(chunk)

    return await db.copy_from_query(query, *args, output=output)


async def _cursor(db: Any, query: str, *args: Any) -> list[Any]:
    async with db.transaction():
        return [row async for row in db.cursor(query, *args)]


async def _prepared(db: Any, query: str, *args: Any) -> list[Any]:
    statement = await db.prepare(query)
    return await statement.fetch(*args)


ROW = (2, "mallory", "pwned")

# Each guarded Connection method, run with an attacked WHERE condition.
STATEMENTS: dict[str, Run] = {
    "execute": lambda db, t, w: db.execute(update(t, w)),
    "executemany": lambda db, t, w: db.executemany(update(t, w), [()]),
    "fetch": lambda db, t, w: db.fetch(update(t, w)),
    "fetchrow": lambda db, t, w: db.fetchrow(update(t, w)),
    "fetchval": lambda db, t, w: db.fetchval(update(t, w)),
    "fetchmany": lambda db, t, w: db.fetchmany(update(t, w), [()]),
    "prepare": lambda db, t, w: _prepared(db, update(t, w)),
    "cursor": lambda db, t, w: _cursor(db, update(t, w)),
    "copy_from_query": lambda db, t, w: _copy_out(db, update(t, w)),
    "copy_from_query+args": lambda db, t, w: _copy_out(
        db, update(t, f"({w}) AND $1::int IS NOT NULL"), 1
    ),
    "copy_to_table(where)": lambda db, t, w: db.copy_to_table(
        t, source=memoryview(b"2\tmallory\tpwned\n"), where=w
    ),
    "copy_records_to_table(where)": lambda db, t, w: db.copy_records_to_table(
        t, records=[ROW], where=w
    ),
}
# Pool methods acquire a connection and call the same method on it (nothing of the pool is
# patched); cursor() and prepare() exist on the pool's connections only.
POOL_STATEMENTS = {
    name: run for name, run in STATEMENTS.items() if name not in {"cursor", "prepare"}
}


async def _connect() -> Any:
    return await asyncpg.connect(**PG)


@pytest.mark.parametrize("method", list(STATEMENTS))
def test_each_method_blocks_injections_before_they_run(
    protected: rasp.Config, canary: Canary, method: str
) -> None:
    run = STATEMENTS[method]
    for value, where in attacks(canary.table):

        async def main(where: str = where) -> None:
            conn = await _connect()
            try:
                with pytest.raises(rasp.AttackBlocked) as info:
                    await run(conn, canary.table, where)
                assert info.value.incident.sink == "asyncpg"
                assert info.value.incident.dialect == "postgresql"
                assert await conn.fetchval("SELECT 1") == 1  # the connection is still usable
            finally:
                await conn.close()

        in_request(value, main)
        assert canary.rows() == INTACT, (method, value)


@pytest.mark.parametrize("method", list(STATEMENTS))
def test_attacks_run_when_not_guarded(canary: Canary, method: str) -> None:
    # The control: without the agent the same statements do reach the server and change it,
    # so the test above proves the guard, not a broken statement.
    value, where = attacks(canary.table)[0]

    async def main() -> None:
        conn = await _connect()
        try:
            await STATEMENTS[method](conn, canary.table, where)
        finally:
            await conn.close()

    in_request(value, main)
    assert canary.rows() != INTACT


def test_stacked_drop_really_drops_when_not_guarded(canary: Canary) -> None:
    value, where = attacks(canary.table)[2]

    async def main() -> None:
        conn = await _connect()
        try:
            await conn.execute(update(canary.table, where))  # simple protocol: runs both
        finally:
            await conn.close()

    in_request(value, main)
    assert canary.rows() is None


# Each method with the attack strings as bound parameters ($1): they must run and store the
# strings intact.
PARAMETERIZED: dict[str, Callable[[Any, str, str], Awaitable[object]]] = {
    "execute": lambda db, t, v: db.execute(f"UPDATE {t} SET note = $1 WHERE id = 1", v),
    "executemany": lambda db, t, v: db.executemany(
        f"UPDATE {t} SET note = $1 WHERE id = 1", [(v,)]
    ),
    "fetch": lambda db, t, v: db.fetch(f"UPDATE {t} SET note = $1 WHERE id = 1 RETURNING id", v),
    "fetchrow": lambda db, t, v: db.fetchrow(
        f"UPDATE {t} SET note = $1 WHERE id = 1 RETURNING id", v
    ),
    "fetchval": lambda db, t, v: db.fetchval(
        f"UPDATE {t} SET note = $1 WHERE id = 1 RETURNING id", v
    ),
    "fetchmany": lambda db, t, v: db.fetchmany(
        f"UPDATE {t} SET note = $1 WHERE id = 1 RETURNING id", [(v,)]
    ),
    "prepare": lambda db, t, v: _prepared(db, f"UPDATE {t} SET note = $1 WHERE id = 1", v),
    "cursor": lambda db, t, v: _cursor(
        db, f"UPDATE {t} SET note = $1 WHERE id = 1 RETURNING id", v
    ),
    "copy_from_query": lambda db, t, v: _copy_out(
        db, f"UPDATE {t} SET note = $1 WHERE id = 1 RETURNING id", v
    ),
    "copy_to_table": lambda db, t, v: db.copy_to_table(
        t, source=memoryview(f"2\tmallory\t{v}\n".encode()), where="id > 1"
    ),
    "copy_records_to_table": lambda db, t, v: db.copy_records_to_table(
        t, records=[(2, "mallory", v)], where="id > 1"
    ),
}


@pytest.mark.parametrize("method", list(PARAMETERIZED))
def test_bound_parameters_pass_and_store_intact(
    protected: rasp.Config, canary: Canary, method: str
) -> None:
    for value, _ in attacks(canary.table):

        async def main(value: str = value) -> None:
            conn = await _connect()
            try:
                await conn.execute(f"DELETE FROM {canary.table} WHERE id = 2")
                await PARAMETERIZED[method](conn, canary.table, value)
            finally:
                await conn.close()

        _, context = in_request(value, main)
        assert context.incidents == []
        rows = canary.rows()
        assert rows is not None
        assert value in {row[2] for row in rows}, (method, value)


def _pool_main(canary: Canary, run: Run, where: str) -> Callable[[], Awaitable[None]]:
    async def main() -> None:
        async with asyncpg.create_pool(**PG, min_size=1, max_size=1) as pool:
            with pytest.raises(rasp.AttackBlocked):
                await run(pool, canary.table, where)
            # The one connection went back to the pool and still works.
            assert await pool.fetchval("SELECT $1::text", "ok") == "ok"
            async with pool.acquire() as proxy:
                assert type(proxy).__name__ == "PoolConnectionProxy"
                for name in ("cursor", "prepare", "fetch"):
                    with pytest.raises(rasp.AttackBlocked):
                        await STATEMENTS[name](proxy, canary.table, where)

    return main


@pytest.mark.parametrize("method", list(POOL_STATEMENTS))
def test_pools_are_guarded_through_their_connections(
    protected: rasp.Config, canary: Canary, method: str
) -> None:
    value, where = attacks(canary.table)[0]
    _, context = in_request(value, _pool_main(canary, POOL_STATEMENTS[method], where))
    # Once per statement: the pool method and the connection's are not both checked.
    assert len(context.incidents) == 4
    assert canary.rows() == INTACT


def test_pool_bound_parameters_pass(protected: rasp.Config, canary: Canary) -> None:
    value = attacks(canary.table)[0][0]

    async def main() -> object:
        async with asyncpg.create_pool(**PG, min_size=1, max_size=2) as pool:
            await pool.execute(f"UPDATE {canary.table} SET note = $1 WHERE id = 1", value)
            async with pool.acquire() as proxy:
                return await proxy.fetchval(f"SELECT note FROM {canary.table} WHERE id = $1", 1)

    note, context = in_request(value, main)
    assert note == value
    assert context.incidents == []
    assert canary.rows() == [(1, "alice", value)]


def test_outside_a_request_nothing_is_blocked(protected: rasp.Config, canary: Canary) -> None:
    _, where = attacks(canary.table)[0]

    async def main() -> None:
        conn = await _connect()
        try:
            await conn.execute(update(canary.table, where))
        finally:
            await conn.close()

    assert _CURRENT.get() is None
    asyncio.run(main())
    assert canary.rows() == [(1, "alice", "pwned")]


def test_context_reaches_the_check_inside_tasks(protected: rasp.Config, canary: Canary) -> None:
    value, where = attacks(canary.table)[0]

    async def attack(conn: Any) -> None:
        await asyncio.sleep(0)
        await conn.execute(update(canary.table, where))

    async def main() -> list[object]:
        first, second = await _connect(), await _connect()
        try:
            results = await asyncio.gather(
                attack(first), asyncio.create_task(attack(second)), return_exceptions=True
            )
            with pytest.raises(rasp.AttackBlocked):
                await asyncio.wait_for(attack(first), timeout=5)
            return results
        finally:
            await first.close()
            await second.close()

    results, context = in_request(value, main)
    assert [type(result) for result in results] == [rasp.AttackBlocked, rasp.AttackBlocked]
    assert len(context.incidents) == 3
    assert canary.rows() == INTACT


@pytest.mark.parametrize("method", list(STATEMENTS))
def test_monitor_mode_reports_each_statement_once_and_lets_it_run(
    canary: Canary, method: str
) -> None:
    value, where = attacks(canary.table)[0]

    async def main() -> None:
        conn = await _connect()
        try:
            await STATEMENTS[method](conn, canary.table, where)
        finally:
            await conn.close()

    rasp.protect(rasp.Config(mode=rasp.Mode.MONITOR))
    try:
        _, context = in_request(value, main)
    finally:
        rasp.unprotect()
    # copy_from_query with arguments prepares the same query again through prepare():
    # that inner call must not be a second report.
    assert [incident.action for incident in context.incidents] == ["monitored"]
    assert canary.rows() != INTACT


def test_the_check_happens_at_the_call_before_any_coroutine(
    protected: rasp.Config, canary: Canary
) -> None:
    value, where = attacks(canary.table)[0]
    sql = update(canary.table, where)
    calls: dict[str, Callable[[Any], object]] = {
        "execute": lambda conn: conn.execute(sql),
        "executemany": lambda conn: conn.executemany(sql, [()]),
        "fetch": lambda conn: conn.fetch(sql),
        "fetchrow": lambda conn: conn.fetchrow(sql),
        "fetchval": lambda conn: conn.fetchval(sql),
        "fetchmany": lambda conn: conn.fetchmany(sql, [()]),
        "prepare": lambda conn: conn.prepare(sql),
        "cursor": lambda conn: conn.cursor(sql),  # a CursorFactory: runs nothing by itself
        "copy_from_query": lambda conn: conn.copy_from_query(sql, 1, output=print),
        "copy_to_table": lambda conn: conn.copy_to_table("t", source=b"", where=where),
        "copy_records_to_table": lambda conn: conn.copy_records_to_table(
            "t", records=[], where=where
        ),
    }

    async def main() -> list[str]:
        conn = await _connect()
        blocked = []
        try:
            for name, call in calls.items():
                # Raised by the call itself: no coroutine was made (an un-awaited one would
                # warn, and warnings are errors here).
                with pytest.raises(rasp.AttackBlocked):
                    call(conn)
                blocked.append(name)
        finally:
            await conn.close()
        return blocked

    blocked, _ = in_request(value, main)
    assert blocked == list(calls)


def test_methods_stay_coroutine_functions(protected: rasp.Config) -> None:
    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare"):
        assert inspect.iscoroutinefunction(getattr(asyncpg.Connection, name)), name
    assert not inspect.iscoroutinefunction(asyncpg.Connection.cursor)


def test_unprotect_restores_the_originals() -> None:
    original = asyncpg.Connection.__dict__["fetch"]
    rasp.protect(rasp.Config())
    try:
        assert asyncpg.Connection.__dict__["fetch"] is not original
        assert "asyncpg.connection.Connection.fetch" in rasp.sinks.installed()
    finally:
        rasp.unprotect()
    assert asyncpg.Connection.__dict__["fetch"] is original


def test_protect_before_import_guards_asyncpg(postgres_dsn: str) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        import rasp
        rasp.protect(rasp.Config())
        assert "asyncpg" not in sys.modules
        import asyncpg
        from rasp.context import _CURRENT, RequestContext, UserInput
        value = "0 OR 1=1"
        _CURRENT.set(RequestContext("GET", "/", lambda c: [UserInput("query", "q", value)]))
        async def main():
            conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres",
                                         database="test")
            try:
                conn.fetch("SELECT 1 WHERE 1 = " + value)
            except rasp.AttackBlocked:
                print("blocked")
            finally:
                await conn.close()
        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "blocked", result.stderr
