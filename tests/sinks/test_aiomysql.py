"""aiomysql against the real MariaDB: string-built injections are blocked when the method is
called (before its coroutine exists), bound parameters are data, each statement is judged
once, and one task's guarded call never turns off checks in another task."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import aiomysql
import aiomysql.connection
import aiomysql.cursors
import pytest
import wrapt
from pymysql.constants import CLIENT
from sql_cases import MYSQL_ATTACKS, MYSQL_SEED, MYSQL_STACKED, build_mysql, serving, unique_table

import rasp
from rasp.context import RequestContext

TABLE = unique_table("h6_aiomysql")
SEED = MYSQL_SEED
ATTACKS = MYSQL_ATTACKS
STACKED = MYSQL_STACKED
CURSORS = [
    aiomysql.cursors.Cursor,
    aiomysql.cursors.DictCursor,
    aiomysql.cursors.SSCursor,
    aiomysql.cursors.SSDictCursor,
    aiomysql.cursors.DeserializationCursor,
]

build = partial(build_mysql, TABLE)
request = partial(serving, path="/search")


@asynccontextmanager
async def connect(params: dict[str, Any], **extra: Any) -> AsyncIterator[Any]:
    # autocommit: anything that ran is visible to the canary's separate connection.
    conn = await aiomysql.connect(
        host=params["host"],
        port=params["port"],
        user=params["user"],
        password=params["password"],
        db=params["database"],
        autocommit=True,
        **extra,
    )
    try:
        yield conn
    finally:
        await conn.ensure_closed()


def test_every_cursor_class_inherits_the_guarded_methods(protected: rasp.Config) -> None:
    assert {
        "aiomysql.connection.Connection.query",
        "aiomysql.cursors.Cursor.execute",
        "aiomysql.cursors.Cursor.executemany",
    } <= set(rasp.sinks.installed())
    for cls in CURSORS:
        for name in ("execute", "executemany"):
            assert isinstance(inspect.getattr_static(cls, name), wrapt.FunctionWrapper)


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_are_real_outside_a_request(
    protected: rasp.Config,
    mariadb_params: dict[str, Any],
    mysql_canary: Callable[[], tuple[Any, ...]],
    attack: str,
) -> None:
    # Outside a request nothing is blocked, and each attack does change the mysql_canary: the
    # blocked cases below are then proof that the statement never reached the server.
    template, value = ATTACKS[attack]

    async def app() -> None:
        async with connect(mariadb_params) as conn, conn.cursor() as cur:
            await cur.execute(build(template, value))

    asyncio.run(app())
    assert mysql_canary() != SEED


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_blocked_when_called_and_never_reaches_the_server(
    protected: rasp.Config,
    mariadb_params: dict[str, Any],
    mysql_canary: Callable[[], tuple[Any, ...]],
    attack: str,
) -> None:
    template, value = ATTACKS[attack]

    async def app() -> tuple[RequestContext, rasp.Incident]:
        async with connect(mariadb_params) as conn, conn.cursor() as cur:
            with request(value) as context:
                with pytest.raises(rasp.AttackBlocked) as info:
                    cur.execute(build(template, value))  # raises at the call: no coroutine
                await cur.execute(f"SELECT count(*) FROM {TABLE}")  # still usable
                assert await cur.fetchone() == (2,)
        return context, info.value.incident

    context, incident = asyncio.run(app())
    assert (incident.sink, incident.dialect, incident.action) == ("aiomysql", "mysql", "blocked")
    assert incident.input_source == "query.name" and incident.input_value == value
    assert incident.code_file == __file__  # the app's line, not the driver's
    assert context.incidents == [incident]
    assert mysql_canary() == SEED


METHODS: dict[str, Callable[[Any, Any, str], Awaitable[Any]]] = {
    "Cursor.execute": lambda conn, cur, sql: cur.execute(sql),
    "Cursor.execute(args=())": lambda conn, cur, sql: cur.execute(sql, ()),
    "Cursor.execute(query=)": lambda conn, cur, sql: cur.execute(query=sql),
    "Cursor.executemany": lambda conn, cur, sql: cur.executemany(sql, [(), ()]),
    "Connection.query": lambda conn, cur, sql: conn.query(sql),
}


@pytest.mark.parametrize("method", METHODS)
def test_every_entry_point_is_guarded(
    protected: rasp.Config,
    mariadb_params: dict[str, Any],
    mysql_canary: Callable[[], tuple[Any, ...]],
    method: str,
) -> None:
    template, value = ATTACKS["dash_comment"]
    run = METHODS[method]

    async def app() -> None:
        async with connect(mariadb_params) as conn, conn.cursor() as cur:
            with request(value):
                with pytest.raises(rasp.AttackBlocked):
                    await run(conn, cur, build(template, value))
                # An honest statement through the same entry point runs.
                await run(conn, cur, f"UPDATE {TABLE} SET secret = 'ok' WHERE name = 'bob'")

    asyncio.run(app())
    assert mysql_canary() == ((1, "alice", "s1"), (2, "bob", "ok"))


@pytest.mark.parametrize(
    "params", [("bound-data",), {"s": "bound-data"}], ids=["format", "pyformat"]
)
def test_the_statement_is_checked_before_binding(
    protected: rasp.Config,
    mariadb_params: dict[str, Any],
    mysql_canary: Callable[[], tuple[Any, ...]],
    params: Any,
) -> None:
    # The guard sees the template the app wrote, placeholders and all: bound values are
    # data, never part of what is judged.
    placeholder = "%s" if isinstance(params, tuple) else "%(s)s"
    template = "UPDATE {t} SET secret = " + placeholder + " WHERE name = '{v}'"
    value = "nobody' OR 1=1 -- "

    async def app() -> rasp.Incident:
        async with connect(mariadb_params) as conn, conn.cursor() as cur:
            with request(value), pytest.raises(rasp.AttackBlocked) as info:
                await cur.execute(build(template, value), params)
        return info.value.incident

    statement = asyncio.run(app()).statement
    assert placeholder in statement and "bound-data" not in statement, statement
    assert mysql_canary() == SEED


@pytest.mark.parametrize("cursorclass", CURSORS, ids=lambda c: c.__name__)
def test_every_cursor_class_is_guarded(
    protected: rasp.Config,
    mariadb_params: dict[str, Any],
    mysql_canary: Callable[[], tuple[Any, ...]],
    cursorclass: type[Any],
) -> None:
    template, value = ATTACKS["union_select"]

    async def app() -> None:
        async with connect(mariadb_params) as conn, conn.cursor(cursorclass) as cur:
            with request(value):
                with pytest.raises(rasp.AttackBlocked):
                    await cur.execute(build(template, value))
                await cur.execute(f"UPDATE {TABLE} SET secret = %s WHERE id = 2", (value,))
                await cur.execute(f"SELECT secret FROM {TABLE} WHERE secret = %s", (value,))
                assert await cur.fetchone() in ((value,), {"secret": value})
                assert await cur.fetchone() is None

    asyncio.run(app())
    assert mysql_canary() == ((1, "alice", "s1"), (2, "bob", value))


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_same_strings_as_bound_parameters_are_stored_intact(
    protected: rasp.Config,
    mariadb_params: dict[str, Any],
    mysql_canary: Callable[[], tuple[Any, ...]],
    attack: str,
) -> None:
    _, value = ATTACKS[attack]

    async def app() -> None:
        async with connect(mariadb_params) as conn, conn.cursor() as cur:
            with request(value):
                await cur.execute(
                    f"INSERT INTO {TABLE} (id, name, secret) VALUES (%s, %s, %s)", (3, "p", value)
                )
                await cur.execute(
                    f"INSERT INTO {TABLE} (id, name, secret) VALUES (%(id)s, %(n)s, %(s)s)",
                    {"id": 4, "n": "n", "s": value},
                )
                # Multi-row INSERT (aiomysql interpolates the rows itself) and a looped UPDATE.
                await cur.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s)", [(5, "m", value)])
                await cur.executemany(
                    f"INSERT INTO {TABLE} VALUES (%(id)s, %(n)s, %(s)s)",
                    [{"id": 6, "n": "k", "s": value}, {"id": 7, "n": "k", "s": value}],
                )
                await cur.executemany(
                    f"UPDATE {TABLE} SET name = %s WHERE id = %s", [(value, 1), (value, 2)]
                )
                await cur.execute(
                    f"SELECT count(*) FROM {TABLE} WHERE secret = %(v)s", {"v": value}
                )
                assert await cur.fetchone() == (5,)

    asyncio.run(app())
    rows = mysql_canary()
    assert [row[2] for row in rows[2:]] == [value] * 5
    assert [row[1] for row in rows[:2]] == [value] * 2


def test_stacked_statements_are_blocked(
    protected: rasp.Config,
    mariadb_params: dict[str, Any],
    mysql_canary: Callable[[], tuple[Any, ...]],
) -> None:
    template, value = STACKED
    value = value.format(t=TABLE)
    statement = build(template, value)

    async def app(inside_a_request: bool) -> None:
        async with (
            connect(mariadb_params, client_flag=CLIENT.MULTI_STATEMENTS) as conn,
            conn.cursor() as cur,
        ):
            if inside_a_request:
                with request(value), pytest.raises(rasp.AttackBlocked):
                    await cur.execute(statement)
            else:
                await cur.execute(statement)
                while await cur.nextset():
                    pass

    asyncio.run(app(inside_a_request=True))
    assert mysql_canary() == SEED
    # With MULTI_STATEMENTS the server does run both: outside a request the table empties.
    asyncio.run(app(inside_a_request=False))
    assert mysql_canary() == ()


@pytest.fixture
def monitored() -> Iterator[rasp.Config]:
    config = rasp.protect(rasp.Config(mode=rasp.Mode.MONITOR))
    yield config
    rasp.unprotect()


@pytest.mark.parametrize(
    ("template", "value", "params", "expected"),
    [
        # A looped statement: executemany awaits execute once per row of parameters.
        (
            "UPDATE {t} SET secret = %s WHERE name = '{v}'",
            "nobody' OR 1=1 -- ",
            [("a",), ("b",), ("c",)],
            ((1, "alice", "c"), (2, "bob", "c")),
        ),
        # A multi-row INSERT: aiomysql interpolates every row and hands the text to execute.
        (
            "INSERT INTO {t} (id, name, secret) VALUES (%s, %s, %s)"
            " ON DUPLICATE KEY UPDATE name = '{v}'",
            "x', secret = 'pwned",
            [(1, "a", "a"), (2, "b", "b"), (3, "c", "c")],
            ((1, "x", "pwned"), (2, "x", "pwned"), (3, "c", "c")),
        ),
        # One execute, which awaits the guarded Connection.query.
        (
            "UPDATE {t} SET secret = 'x' WHERE name = '{v}'",
            "nobody' OR 1=1 #",
            None,
            ((1, "alice", "x"), (2, "bob", "x")),
        ),
    ],
    ids=["looped", "multi_row_insert", "execute"],
)
def test_each_statement_is_judged_once_in_monitor_mode(
    monitored: rasp.Config,
    mariadb_params: dict[str, Any],
    mysql_canary: Callable[[], tuple[Any, ...]],
    template: str,
    value: str,
    params: list[tuple[Any, ...]] | None,
    expected: tuple[Any, ...],
) -> None:
    async def app() -> RequestContext:
        async with connect(mariadb_params) as conn, conn.cursor() as cur:
            with request(value) as context:
                if params is None:
                    await cur.execute(build(template, value), ())
                else:
                    await cur.executemany(build(template, value), params)
        return context

    context = asyncio.run(app())
    assert len(context.incidents) == 1, context.incidents
    assert context.incidents[0].action == "monitored"
    assert mysql_canary() == expected  # monitor mode lets it run


def test_a_call_underway_in_one_task_does_not_unguard_another(
    protected: rasp.Config,
    mariadb_params: dict[str, Any],
    mysql_canary: Callable[[], tuple[Any, ...]],
) -> None:
    # While one task's executemany is awaiting the server (its own nested calls unchecked),
    # another task of the same request still has every statement checked.
    template, value = ATTACKS["dash_comment"]
    progress: list[str] = []

    async def honest(conn: Any) -> None:
        async with conn.cursor() as cur:
            progress.append("started")
            await cur.executemany(
                f"UPDATE {TABLE} SET name = %s WHERE id = %s", [("carol", 1), ("dave", 2)] * 20
            )
            progress.append("done")

    async def attack(conn: Any) -> None:
        await asyncio.sleep(0)  # let the honest task reach the server first
        assert progress == ["started"]
        async with conn.cursor() as cur:
            await cur.execute(build(template, value))

    async def app() -> list[Any]:
        async with connect(mariadb_params) as one, connect(mariadb_params) as two:
            with request(value):
                return await asyncio.gather(honest(one), attack(two), return_exceptions=True)

    outcome = asyncio.run(app())
    assert outcome[0] is None
    assert isinstance(outcome[1], rasp.AttackBlocked), outcome[1]
    assert mysql_canary() == ((1, "carol", "s1"), (2, "dave", "s2"))


def _unwrapped(method: Any) -> Any:
    while hasattr(method, "__wrapped__"):  # wrapt wrappers, possibly stacked
        method = method.__wrapped__
    return method


GUARDED = [
    (aiomysql.cursors.Cursor, "execute"),
    (aiomysql.cursors.Cursor, "executemany"),
    (aiomysql.connection.Connection, "query"),
]


def test_unprotect_restores_the_original_methods() -> None:
    originals = {(owner, name): _unwrapped(owner.__dict__[name]) for owner, name in GUARDED}
    rasp.protect(rasp.Config())
    try:
        for (owner, name), original in originals.items():
            assert _unwrapped(owner.__dict__[name]) is original
            assert owner.__dict__[name] is not original
    finally:
        rasp.unprotect()
    for (owner, name), original in originals.items():
        assert owner.__dict__[name] is original, (owner, name)
        assert inspect.iscoroutinefunction(owner.__dict__[name])


def test_after_unprotect_nothing_is_checked(
    mariadb_params: dict[str, Any], mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    rasp.protect(rasp.Config())
    rasp.unprotect()
    template, value = ATTACKS["dash_comment"]

    async def app() -> RequestContext:
        async with connect(mariadb_params) as conn, conn.cursor() as cur:
            with request(value) as context:
                await cur.execute(build(template, value))  # unguarded again: it runs
        return context

    assert asyncio.run(app()).incidents == []
    assert mysql_canary() == ((1, "alice", "x"), (2, "bob", "x"))
