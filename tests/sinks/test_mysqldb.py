"""mysqlclient (MySQLdb) against the real MariaDB: string-built injections are blocked before
they reach the server, bound parameters are data, and each statement is judged once."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import MySQLdb
import MySQLdb.connections
import MySQLdb.cursors
import pytest
import wrapt
from MySQLdb.constants import CLIENT
from sql_cases import MYSQL_ATTACKS, MYSQL_SEED, MYSQL_STACKED, build_mysql, serving, unique_table

import rasp

TABLE = unique_table("h6_mysqldb")
SEED = MYSQL_SEED
ATTACKS = MYSQL_ATTACKS
STACKED = MYSQL_STACKED
CURSORS = [
    MySQLdb.cursors.Cursor,
    MySQLdb.cursors.DictCursor,
    MySQLdb.cursors.SSCursor,
    MySQLdb.cursors.SSDictCursor,
]

build = partial(build_mysql, TABLE)
request = partial(serving, path="/search")


def connect(params: dict[str, Any], **extra: Any) -> MySQLdb.connections.Connection:
    # autocommit: anything that ran is visible to the canary's separate connection.
    return MySQLdb.connect(**params, autocommit=True, charset="utf8mb4", **extra)


@pytest.fixture
def conn(
    protected: rasp.Config, mariadb_params: dict[str, Any]
) -> Iterator[MySQLdb.connections.Connection]:
    connection = connect(mariadb_params)
    yield connection
    connection.close()


def test_every_cursor_class_inherits_the_guarded_methods(
    protected: rasp.Config, mariadb_params: dict[str, Any]
) -> None:
    connect(mariadb_params).close()  # MySQLdb imports its connections module lazily
    assert {
        "MySQLdb.connections.Connection.query",
        "MySQLdb.cursors.BaseCursor.execute",
        "MySQLdb.cursors.BaseCursor.executemany",
    } <= set(rasp.sinks.installed())
    for cls in CURSORS:
        for name in ("execute", "executemany"):
            assert isinstance(inspect.getattr_static(cls, name), wrapt.FunctionWrapper)
    # Connection.query is a Python override of the C method, so it can be guarded.
    assert isinstance(
        inspect.getattr_static(MySQLdb.connections.Connection, "query"), wrapt.FunctionWrapper
    )


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_are_real_outside_a_request(
    conn: MySQLdb.connections.Connection, mysql_canary: Callable[[], tuple[Any, ...]], attack: str
) -> None:
    # Outside a request nothing is blocked, and each attack does change the mysql_canary: the
    # blocked cases below are then proof that the statement never reached the server.
    template, value = ATTACKS[attack]
    with conn.cursor() as cur:
        cur.execute(build(template, value))
    assert mysql_canary() != SEED


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_blocked_and_never_reaches_the_server(
    conn: MySQLdb.connections.Connection, mysql_canary: Callable[[], tuple[Any, ...]], attack: str
) -> None:
    template, value = ATTACKS[attack]
    with request(value) as context, conn.cursor() as cur:
        with pytest.raises(rasp.AttackBlocked) as info:
            cur.execute(build(template, value))
        cur.execute(f"SELECT count(*) FROM {TABLE}")  # the connection is still usable
        assert cur.fetchone() == (2,)
    incident = info.value.incident
    assert (incident.sink, incident.dialect, incident.action) == ("MySQLdb", "mysql", "blocked")
    assert incident.input_source == "query.name" and incident.input_value == value
    assert incident.code_file == __file__  # the app's line, not the driver's
    assert context.incidents == [incident]
    assert mysql_canary() == SEED


@pytest.mark.parametrize(
    "params",
    [("bound-data",), {"s": "bound-data"}],
    ids=["format", "pyformat"],
)
def test_the_statement_is_checked_before_binding(
    conn: MySQLdb.connections.Connection, mysql_canary: Callable[[], tuple[Any, ...]], params: Any
) -> None:
    # The guard sees the template the app wrote, placeholders and all: bound values are
    # data, never part of what is judged.
    placeholder = "%s" if isinstance(params, tuple) else "%(s)s"
    template = "UPDATE {t} SET secret = " + placeholder + " WHERE name = '{v}'"
    value = "nobody' OR 1=1 -- "
    with request(value), conn.cursor() as cur, pytest.raises(rasp.AttackBlocked) as info:
        cur.execute(build(template, value), params)
    statement = info.value.incident.statement
    assert placeholder in statement and "bound-data" not in statement, statement
    assert mysql_canary() == SEED


METHODS: dict[str, Callable[[MySQLdb.connections.Connection, str], Any]] = {
    "Cursor.execute": lambda c, sql: c.cursor().execute(sql),
    "Cursor.execute(bytes)": lambda c, sql: c.cursor().execute(sql.encode(), ()),
    "Cursor.execute(query=)": lambda c, sql: c.cursor().execute(query=sql),
    "Cursor.executemany": lambda c, sql: c.cursor().executemany(sql, [(), ()]),
    "Connection.query": lambda c, sql: c.query(sql),
    "Connection.query(bytearray)": lambda c, sql: c.query(bytearray(sql.encode())),
}


@pytest.mark.parametrize("method", METHODS)
def test_every_entry_point_is_guarded(
    conn: MySQLdb.connections.Connection, mysql_canary: Callable[[], tuple[Any, ...]], method: str
) -> None:
    template, value = ATTACKS["dash_comment"]
    with request(value):
        with pytest.raises(rasp.AttackBlocked):
            METHODS[method](conn, build(template, value))
        # An honest statement through the same entry point runs.
        METHODS[method](conn, f"UPDATE {TABLE} SET secret = 'ok' WHERE name = 'bob'")
    assert mysql_canary() == ((1, "alice", "s1"), (2, "bob", "ok"))


@pytest.mark.parametrize("cursorclass", CURSORS, ids=lambda c: c.__name__)
def test_every_cursor_class_is_guarded(
    conn: MySQLdb.connections.Connection,
    mysql_canary: Callable[[], tuple[Any, ...]],
    cursorclass: type[MySQLdb.cursors.BaseCursor],
) -> None:
    template, value = ATTACKS["union_select"]
    with request(value), conn.cursor(cursorclass) as cur:
        with pytest.raises(rasp.AttackBlocked):
            cur.execute(build(template, value))
        cur.execute(f"UPDATE {TABLE} SET secret = %s WHERE id = 2", (value,))
        cur.execute(f"SELECT secret FROM {TABLE} WHERE secret = %s", (value,))
        assert cur.fetchone() in ((value,), {"secret": value})
        assert cur.fetchone() is None
    assert mysql_canary() == ((1, "alice", "s1"), (2, "bob", value))


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_same_strings_as_bound_parameters_are_stored_intact(
    conn: MySQLdb.connections.Connection, mysql_canary: Callable[[], tuple[Any, ...]], attack: str
) -> None:
    _, value = ATTACKS[attack]
    with request(value), conn.cursor() as cur:
        cur.execute(f"INSERT INTO {TABLE} (id, name, secret) VALUES (%s, %s, %s)", (3, "p", value))
        cur.execute(
            f"INSERT INTO {TABLE} (id, name, secret) VALUES (%(id)s, %(name)s, %(secret)s)",
            {"id": 4, "name": "n", "secret": value},
        )
        # Multi-row INSERT (MySQLdb interpolates the rows itself) and a looped UPDATE.
        cur.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s)", [(5, "m", value)])
        cur.executemany(
            f"INSERT INTO {TABLE} VALUES (%(id)s, %(name)s, %(secret)s)",
            [{"id": 6, "name": "k", "secret": value}, {"id": 7, "name": "k", "secret": value}],
        )
        cur.executemany(f"UPDATE {TABLE} SET name = %s WHERE id = %s", [(value, 1), (value, 2)])
        cur.execute(f"SELECT count(*) FROM {TABLE} WHERE secret = %(v)s", {"v": value})
        assert cur.fetchone() == (5,)
    rows = mysql_canary()
    assert [row[2] for row in rows[2:]] == [value] * 5
    assert [row[1] for row in rows[:2]] == [value] * 2


def test_backslash_escaped_input_is_not_an_attack(
    conn: MySQLdb.connections.Connection, mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    # The app escapes correctly (the driver's own literal gives 'O\'Brien'): one literal.
    value = "O'Brien \\ 'x' -- #"
    literal = conn.literal(value).decode()
    with request(value) as context, conn.cursor() as cur:
        cur.execute(f"UPDATE {TABLE} SET secret = {literal} WHERE id = 1")
    assert context.incidents == []
    assert mysql_canary()[0] == (1, "alice", value)


@pytest.fixture
def stacking_conn(
    protected: rasp.Config, mariadb_params: dict[str, Any]
) -> Iterator[MySQLdb.connections.Connection]:
    connection = connect(mariadb_params, client_flag=CLIENT.MULTI_STATEMENTS)
    yield connection
    connection.close()


def test_stacked_statements_are_blocked(
    stacking_conn: MySQLdb.connections.Connection, mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    template, value = STACKED
    value = value.format(t=TABLE)
    statement = build(template, value)
    with request(value), stacking_conn.cursor() as cur:
        with pytest.raises(rasp.AttackBlocked):
            cur.execute(statement)
    assert mysql_canary() == SEED
    # With MULTI_STATEMENTS the server does run both: outside a request the table empties.
    with stacking_conn.cursor() as cur:
        cur.execute(statement)
        while cur.nextset():
            pass
    assert mysql_canary() == ()


@pytest.fixture
def monitored(mariadb_params: dict[str, Any]) -> Iterator[MySQLdb.connections.Connection]:
    rasp.protect(rasp.Config(mode=rasp.Mode.MONITOR))
    connection = connect(mariadb_params, client_flag=CLIENT.MULTI_STATEMENTS)
    yield connection
    connection.close()
    rasp.unprotect()


LOOPED = (
    "UPDATE {t} SET secret = %s WHERE name = '{v}'",
    "nobody' OR 1=1 -- ",
    [("a",), ("b",), ("c",)],
    ((1, "alice", "c"), (2, "bob", "c")),
)


@pytest.mark.parametrize(
    ("template", "value", "params", "expected", "fallback"),
    [
        # A looped statement: executemany calls execute once per row of parameters.
        (*LOOPED, "loop"),
        # mysqlclient 2.3 may instead join the interpolated statements with ";" and hand
        # them to execute as one text (MULTI_STATEMENTS and executemany_fallback="multi").
        (*LOOPED, "multi"),
        # A multi-row INSERT: the driver interpolates every row and hands the text to execute.
        (
            "INSERT INTO {t} (id, name, secret) VALUES (%s, %s, %s)"
            " ON DUPLICATE KEY UPDATE name = '{v}'",
            "x', secret = 'pwned",
            [(1, "a", "a"), (2, "b", "b"), (3, "c", "c")],
            ((1, "x", "pwned"), (2, "x", "pwned"), (3, "c", "c")),
            "loop",
        ),
    ],
    ids=["looped", "multi_statement_batch", "multi_row_insert"],
)
def test_executemany_is_judged_once_in_monitor_mode(
    monitored: MySQLdb.connections.Connection,
    mysql_canary: Callable[[], tuple[Any, ...]],
    template: str,
    value: str,
    params: list[tuple[Any, ...]],
    expected: tuple[Any, ...],
    fallback: str,
) -> None:
    with request(value) as context, monitored.cursor() as cur:
        if not hasattr(cur, "executemany_fallback"):
            pytest.skip("this mysqlclient has no executemany_fallback")
        cur.executemany_fallback = fallback
        cur.executemany(build(template, value), params)
    assert len(context.incidents) == 1, context.incidents
    assert context.incidents[0].action == "monitored"
    assert mysql_canary() == expected  # monitor mode lets it run


def test_one_execute_is_one_alert_in_monitor_mode(
    monitored: MySQLdb.connections.Connection, mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    # Cursor.execute ends in the guarded Connection.query: judged once all the same.
    template, value = ATTACKS["hash_comment"]
    with request(value) as context, monitored.cursor() as cur:
        cur.execute(build(template, value), ())
    assert [i.action for i in context.incidents] == ["monitored"]
    assert mysql_canary() == ((1, "alice", "x"), (2, "bob", "x"))


def _unwrapped(method: Any) -> Any:
    while hasattr(method, "__wrapped__"):  # wrapt wrappers, possibly stacked
        method = method.__wrapped__
    return method


GUARDED = [
    (MySQLdb.cursors.BaseCursor, "execute"),
    (MySQLdb.cursors.BaseCursor, "executemany"),
    (MySQLdb.connections.Connection, "query"),
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


def test_after_unprotect_nothing_is_checked(
    mariadb_params: dict[str, Any], mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    rasp.protect(rasp.Config())
    rasp.unprotect()
    template, value = ATTACKS["dash_comment"]
    connection = connect(mariadb_params)
    try:
        with request(value) as context, connection.cursor() as cur:
            cur.execute(build(template, value))  # unguarded again: it runs
    finally:
        connection.close()
    assert context.incidents == []
    assert mysql_canary() == ((1, "alice", "x"), (2, "bob", "x"))
