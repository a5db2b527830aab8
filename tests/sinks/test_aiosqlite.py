from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import rasp
from rasp.context import _CURRENT, RequestContext, UserInput

aiosqlite = pytest.importorskip("aiosqlite", reason="aiosqlite is not installed")

TABLE = "h7_canary"
INTACT = [(1, "alice", "intact")]
T = TypeVar("T")

# (user input, the WHERE condition an app builds by pasting it in); each one, when it runs,
# matches the canary row (or drops the table).
ATTACKS = [
    ("x' OR '1'='1", "name = 'x' OR '1'='1'"),
    ("0 OR 1=1", "id = 0 OR 1=1"),
    (f"0; DROP TABLE {TABLE} --", f"id = 0; DROP TABLE {TABLE} --"),
    ("alice' --", "name = 'alice' --' AND id = 0"),
    (f"0 OR id IN (SELECT id FROM {TABLE})", f"id = 0 OR id IN (SELECT id FROM {TABLE})"),
]


def update(where: str) -> str:
    return f"UPDATE {TABLE} SET note = 'pwned' WHERE {where}"


class Canary:
    """The test's database file, read back through a separate sqlite3 connection."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def rows(self) -> list[tuple[Any, ...]] | None:
        """Every row, or None when the table is gone."""
        conn = sqlite3.connect(self.path)
        try:
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (TABLE,)).fetchall():
                return None
            return conn.execute(f"SELECT id, name, note FROM {TABLE} ORDER BY id").fetchall()
        finally:
            conn.close()


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Canary]:
    path = tmp_path / "h7.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, name TEXT, note TEXT)")
    conn.execute(f"INSERT INTO {TABLE} VALUES (1, 'alice', 'intact')")
    conn.commit()
    conn.close()
    yield Canary(path)


def in_request(value: str, main: Callable[[], Awaitable[T]]) -> tuple[T, RequestContext]:
    """Run ``main`` under asyncio.run while serving a request whose input is ``value``:
    asyncio.run copies the current context into its main task, as an ASGI server's does."""
    context = RequestContext("GET", "/", lambda c: [UserInput("query", "q", value)])
    token = _CURRENT.set(context)
    try:
        return asyncio.run(main()), context  # type: ignore[arg-type]
    finally:
        _CURRENT.reset(token)


async def _cursor_call(db: Any, method: str, *args: Any) -> object:
    async with db.cursor() as cursor:
        return await getattr(cursor, method)(*args)


# Each guarded method, given a statement and (optionally) its parameters.
STATEMENTS: dict[str, Callable[[Any, str], Awaitable[object]]] = {
    "Connection.execute": lambda db, sql: db.execute(sql),
    "Connection.executemany": lambda db, sql: db.executemany(sql, [()]),
    "Connection.executescript": lambda db, sql: db.executescript(sql),
    "Connection.execute_fetchall": lambda db, sql: db.execute_fetchall(sql),
    "Connection.execute_insert": lambda db, sql: db.execute_insert(sql),
    "Cursor.execute": lambda db, sql: _cursor_call(db, "execute", sql),
    "Cursor.executemany": lambda db, sql: _cursor_call(db, "executemany", sql, [()]),
    "Cursor.executescript": lambda db, sql: _cursor_call(db, "executescript", sql),
}


async def _run(path: str, method: str, sql: str) -> None:
    async with aiosqlite.connect(path) as db:
        await STATEMENTS[method](db, sql)
        await db.commit()


@pytest.mark.parametrize("method", list(STATEMENTS))
def test_each_method_blocks_injections_before_they_run(
    protected: rasp.Config, canary: Canary, method: str
) -> None:
    for value, where in ATTACKS:

        async def main(where: str = where) -> None:
            async with aiosqlite.connect(canary.path) as db:
                with pytest.raises(rasp.AttackBlocked) as info:
                    await STATEMENTS[method](db, update(where))
                assert info.value.incident.sink == "aiosqlite"
                assert info.value.incident.dialect == "sqlite"
                assert await db.execute_fetchall("SELECT 1") == [(1,)]  # still usable
                await db.commit()

        in_request(value, main)
        assert canary.rows() == INTACT, (method, value)


@pytest.mark.parametrize("method", list(STATEMENTS))
def test_attacks_run_when_not_guarded(canary: Canary, method: str) -> None:
    # The control: without the agent the same statement reaches the database and changes it.
    value, where = ATTACKS[0]
    in_request(value, lambda: _run(canary.path, method, update(where)))
    assert canary.rows() == [(1, "alice", "pwned")]


def test_stacked_drop_really_drops_when_not_guarded(canary: Canary) -> None:
    value, where = ATTACKS[2]
    in_request(value, lambda: _run(canary.path, "Connection.executescript", update(where)))
    assert canary.rows() is None


def test_the_check_happens_at_the_call_before_any_coroutine(
    protected: rasp.Config, canary: Canary
) -> None:
    value, where = ATTACKS[0]
    sql = update(where)

    async def main() -> list[str]:
        blocked = []
        async with aiosqlite.connect(canary.path) as db, db.cursor() as cursor:
            calls: dict[str, Callable[[], object]] = {
                "Connection.execute": lambda: db.execute(sql),
                "Connection.executemany": lambda: db.executemany(sql, [()]),
                "Connection.executescript": lambda: db.executescript(sql),
                "Connection.execute_fetchall": lambda: db.execute_fetchall(sql),
                "Connection.execute_insert": lambda: db.execute_insert(sql),
                "Cursor.execute": lambda: cursor.execute(sql),
                "Cursor.executemany": lambda: cursor.executemany(sql, [()]),
                "Cursor.executescript": lambda: cursor.executescript(sql),
            }
            for name, call in calls.items():
                # Raised by the call itself: no coroutine was made (an un-awaited one would
                # warn, and warnings are errors here).
                with pytest.raises(rasp.AttackBlocked):
                    call()
                blocked.append(name)
        return blocked

    blocked, _ = in_request(value, main)
    assert blocked == list(STATEMENTS)


PARAMETERIZED: dict[str, Callable[[Any, str], Awaitable[object]]] = {
    "Connection.execute": lambda db, v: db.execute(
        f"UPDATE {TABLE} SET note = ? WHERE id = 1", (v,)
    ),
    "Connection.executemany": lambda db, v: db.executemany(
        f"UPDATE {TABLE} SET note = ? WHERE id = 1", [(v,)]
    ),
    "Connection.execute_fetchall": lambda db, v: db.execute_fetchall(
        f"UPDATE {TABLE} SET note = ? WHERE id = 1 RETURNING id", (v,)
    ),
    "Connection.execute_insert": lambda db, v: db.execute_insert(
        f"INSERT OR REPLACE INTO {TABLE} VALUES (1, 'alice', ?)", (v,)
    ),
    "Cursor.execute": lambda db, v: _cursor_call(
        db, "execute", f"UPDATE {TABLE} SET note = ? WHERE id = 1", (v,)
    ),
    "Cursor.executemany": lambda db, v: _cursor_call(
        db, "executemany", f"UPDATE {TABLE} SET note = ? WHERE id = 1", [(v,)]
    ),
}


@pytest.mark.parametrize("method", list(PARAMETERIZED))
def test_bound_parameters_pass_and_store_intact(
    protected: rasp.Config, canary: Canary, method: str
) -> None:
    for value, _ in ATTACKS:

        async def main(value: str = value) -> None:
            async with aiosqlite.connect(canary.path) as db:
                await PARAMETERIZED[method](db, value)
                await db.commit()

        _, context = in_request(value, main)
        assert context.incidents == []
        assert canary.rows() == [(1, "alice", value)], (method, value)


def test_outside_a_request_nothing_is_blocked(protected: rasp.Config, canary: Canary) -> None:
    _, where = ATTACKS[0]
    assert _CURRENT.get() is None
    asyncio.run(_run(canary.path, "Connection.execute", update(where)))
    assert canary.rows() == [(1, "alice", "pwned")]


def test_context_reaches_the_check_inside_tasks(protected: rasp.Config, canary: Canary) -> None:
    value, where = ATTACKS[0]

    async def attack(db: Any) -> None:
        await asyncio.sleep(0)
        await db.execute(update(where))

    async def main() -> list[object]:
        async with aiosqlite.connect(canary.path) as db:
            results = await asyncio.gather(
                attack(db), asyncio.create_task(attack(db)), return_exceptions=True
            )
            with pytest.raises(rasp.AttackBlocked):
                await asyncio.wait_for(attack(db), timeout=5)
            await db.commit()
            return results

    results, context = in_request(value, main)
    assert [type(result) for result in results] == [rasp.AttackBlocked, rasp.AttackBlocked]
    assert len(context.incidents) == 3
    assert canary.rows() == INTACT


@pytest.mark.parametrize("method", list(STATEMENTS))
def test_monitor_mode_reports_each_statement_once_and_lets_it_run(
    canary: Canary, method: str
) -> None:
    # The sqlite3 guard is installed too: it runs in aiosqlite's worker thread, where there
    # is no request context, so it adds no second report.
    value, where = ATTACKS[0]
    rasp.protect(rasp.Config(mode=rasp.Mode.MONITOR))
    try:
        assert "sqlite3.connect" in rasp.sinks.installed()
        _, context = in_request(value, lambda: _run(canary.path, method, update(where)))
    finally:
        rasp.unprotect()
    assert [(i.sink, i.action) for i in context.incidents] == [("aiosqlite", "monitored")]
    assert canary.rows() == [(1, "alice", "pwned")]


def test_unprotect_restores_the_originals() -> None:
    originals = {
        "execute": aiosqlite.Connection.__dict__["execute"],
        "cursor_execute": aiosqlite.Cursor.__dict__["execute"],
    }
    rasp.protect(rasp.Config())
    try:
        assert aiosqlite.Connection.__dict__["execute"] is not originals["execute"]
        assert aiosqlite.Cursor.__dict__["execute"] is not originals["cursor_execute"]
        assert "aiosqlite.core.Connection.execute" in rasp.sinks.installed()
    finally:
        rasp.unprotect()
    assert aiosqlite.Connection.__dict__["execute"] is originals["execute"]
    assert aiosqlite.Cursor.__dict__["execute"] is originals["cursor_execute"]


def test_protect_before_import_guards_aiosqlite() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        import rasp
        rasp.protect(rasp.Config())
        assert "aiosqlite" not in sys.modules
        import aiosqlite
        from rasp.context import _CURRENT, RequestContext, UserInput
        value = "0 OR 1=1"
        _CURRENT.set(RequestContext("GET", "/", lambda c: [UserInput("query", "q", value)]))
        async def main():
            async with aiosqlite.connect(":memory:") as db:
                try:
                    db.execute("SELECT 1 WHERE 1 = " + value)
                except rasp.AttackBlocked:
                    print("blocked")
        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "blocked", result.stderr
