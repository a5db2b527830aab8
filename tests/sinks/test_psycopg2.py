from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sql_cases import PG_ATTACK, PG_CANARY, pg_attacks, pg_rows, serving

import rasp
from rasp.sinks import psycopg2 as sink

pytest.importorskip("psycopg2")
import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

# One table per process: other sessions may run this module against the same server.
TABLE = f"h5_pg2_canary_{os.getpid()}"
CANARY = PG_CANARY
ATTACK = PG_ATTACK
ATTACK_SQL = f"UPDATE {TABLE} SET name = 'pwned' WHERE name = '{ATTACK}'"
HONEST_SQL = f"UPDATE {TABLE} SET name = 'carol' WHERE name = 'alice'"

ATTACKS = pg_attacks(TABLE)


def _attack(kind: str) -> tuple[str, str]:
    value, template = ATTACKS[kind]
    return value, template.format(t=TABLE, v=value)


request = serving


rows = partial(pg_rows, table=TABLE)


@pytest.fixture
def conn(protected: rasp.Config, pg_canary: str) -> Iterator[Any]:
    connection = psycopg2.connect(pg_canary)
    connection.autocommit = True
    yield connection
    connection.close()


METHODS: dict[str, Callable[[Any, str], Any]] = {
    "execute": lambda cur, q: cur.execute(q),
    "executemany": lambda cur, q: cur.executemany(q, [()]),
    "copy_expert": lambda cur, q: cur.copy_expert(
        f"COPY ({q} RETURNING id) TO STDOUT", io.StringIO()
    ),
    "execute (keyword)": lambda cur, q: cur.execute(query=q),
    "copy_expert (keyword)": lambda cur, q: cur.copy_expert(
        sql=f"COPY ({q} RETURNING id) TO STDOUT", file=io.StringIO()
    ),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_blocks_and_the_statement_never_runs(conn: Any, method: str) -> None:
    run = METHODS[method]
    with request(ATTACK) as context:
        with pytest.raises(rasp.AttackBlocked) as info:
            run(conn.cursor(), ATTACK_SQL)
        assert rows(conn.dsn) == CANARY
        run(conn.cursor(), HONEST_SQL)
    assert rows(conn.dsn) == {1: "carol", 2: "bob"}
    incident = info.value.incident
    assert (incident.sink, incident.dialect) == ("psycopg2", "postgresql")
    assert incident.code_file == __file__
    assert context.blocked is incident


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_every_attack_kind_is_blocked(conn: Any, kind: str) -> None:
    value, statement = _attack(kind)
    with request(value), pytest.raises(rasp.AttackBlocked):
        conn.cursor().execute(statement)
    assert rows(conn.dsn) == CANARY


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_attacks_are_real_outside_a_request(conn: Any, kind: str) -> None:
    _, statement = _attack(kind)
    conn.cursor().execute(statement)
    assert rows(conn.dsn) != CANARY


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_bound_parameters_pass_and_store_the_attack_intact(conn: Any, kind: str) -> None:
    value, _ = _attack(kind)
    cur = conn.cursor()
    with request(value):
        cur.execute(f"INSERT INTO {TABLE} VALUES (%s, %s)", (3, value))
        cur.executemany(
            f"INSERT INTO {TABLE} VALUES (%(id)s, %(name)s)", [{"id": 4, "name": value}]
        )
        # execute_values mogrifies the values into one statement: quoted, so it passes.
        psycopg2.extras.execute_values(cur, f"INSERT INTO {TABLE} VALUES %s", [(5, value)])
        psycopg2.extras.execute_batch(cur, f"INSERT INTO {TABLE} VALUES (%s, %s)", [(6, value)])
        cur.execute(f"SELECT id FROM {TABLE} WHERE name = %s ORDER BY id", (value,))
        assert cur.fetchall() == [(3,), (4,), (5,), (6,)]
        with pytest.raises(rasp.AttackBlocked):  # the same input concatenated: blocked
            cur.execute(_attack(kind)[1])
    assert rows(conn.dsn) == {**CANARY, 3: value, 4: value, 5: value, 6: value}


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_composed_with_literal_passes_and_stores_intact(conn: Any, kind: str) -> None:
    value, _ = _attack(kind)
    query = sql.SQL("INSERT INTO {} VALUES (3, {})").format(
        sql.Identifier(TABLE), sql.Literal(value)
    )
    with request(value):
        conn.cursor().execute(query)
        with pytest.raises(rasp.AttackBlocked):  # the same input concatenated: blocked
            conn.cursor().execute(_attack(kind)[1])
    assert rows(conn.dsn) == {**CANARY, 3: value}


def test_string_built_sql_objects_are_blocked(conn: Any) -> None:
    built = sql.SQL(f"UPDATE {TABLE} SET name = 'pwned' WHERE name = '" + ATTACK + "'")
    composed = sql.SQL("UPDATE {} SET name = 'pwned' WHERE name = '" + ATTACK + "'").format(
        sql.Identifier(TABLE)
    )
    with request(ATTACK):
        for query in (built, composed):
            with pytest.raises(rasp.AttackBlocked):
                conn.cursor().execute(query)
    assert rows(conn.dsn) == CANARY


def test_bytes_statement_is_blocked(conn: Any) -> None:
    with request(ATTACK), pytest.raises(rasp.AttackBlocked):
        conn.cursor().execute(ATTACK_SQL.encode())
    assert rows(conn.dsn) == CANARY


def test_render_gives_the_text_psycopg2_sends(conn: Any) -> None:
    composed = sql.SQL("SELECT {} FROM {}").format(sql.Literal("O'Brien"), sql.Identifier("t"))
    assert sink.render(composed, conn.cursor()) == "SELECT 'O''Brien' FROM \"t\""
    assert sink.render(object(), conn) is None


def test_named_cursor_statement_never_reaches_the_server(
    protected: rasp.Config, pg_canary: str
) -> None:
    conn = psycopg2.connect(pg_canary)  # not autocommit: anything sent opens a transaction
    try:
        with request(ATTACK):
            with pytest.raises(rasp.AttackBlocked):
                conn.cursor("h5_named").execute(f"SELECT id FROM {TABLE} WHERE name = '{ATTACK}'")
            assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
            cur = conn.cursor("h5_named2")
            cur.execute(f"SELECT id FROM {TABLE} WHERE name = 'bob'")
            assert cur.fetchall() == [(2,)]
            cur.close()
    finally:
        conn.close()


def test_outside_a_request_nothing_is_blocked(conn: Any) -> None:
    cur = conn.cursor()
    cur.execute(f"SELECT id FROM {TABLE} WHERE name = '{ATTACK}'")
    assert len(cur.fetchall()) == 2
    with request(ATTACK), pytest.raises(rasp.AttackBlocked):
        cur.execute(f"SELECT id FROM {TABLE} WHERE name = '{ATTACK}'")


# --- cursor and connection factories keep working, and stay guarded -----------------------


class AppCursor(psycopg2.extensions.cursor):
    def first(self) -> Any:
        row = self.fetchone()
        return None if row is None else row[0]


class AppConnection(psycopg2.extensions.connection):
    """An app's connection class that picks its own default cursor class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag = "mine"

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cursor_factory", AppCursor)
        return super().cursor(*args, **kwargs)


def _logging_connection(dsn: str) -> Any:
    conn = psycopg2.connect(dsn, connection_factory=psycopg2.extras.LoggingConnection)
    conn.initialize(io.StringIO())
    return conn


def _django_style(dsn: str) -> Any:
    conn = psycopg2.connect(dsn)
    conn.cursor_factory = psycopg2.extras.RealDictCursor  # set after connect, as Django does
    return conn


E = psycopg2.extras
# case -> (make a connection, make a cursor, expected cursor class, honest row)
FACTORIES: dict[str, tuple[Callable[[str], Any], Callable[[Any], Any], type, Any]] = {
    "cursor(cursor_factory=RealDictCursor)": (
        psycopg2.connect,
        lambda c: c.cursor(cursor_factory=E.RealDictCursor),
        E.RealDictCursor,
        {"id": 2},
    ),
    "cursor(None, NamedTupleCursor)": (
        psycopg2.connect,
        lambda c: c.cursor(None, E.NamedTupleCursor),
        E.NamedTupleCursor,
        (2,),
    ),
    "connect(cursor_factory=DictCursor)": (
        lambda dsn: psycopg2.connect(dsn, cursor_factory=E.DictCursor),
        lambda c: c.cursor(),
        E.DictCursor,
        [2],
    ),
    "conn.cursor_factory set after connect": (
        _django_style,
        lambda c: c.cursor(),
        E.RealDictCursor,
        {"id": 2},
    ),
    "connection_factory=RealDictConnection": (
        lambda dsn: psycopg2.connect(dsn, connection_factory=E.RealDictConnection),
        lambda c: c.cursor(),
        E.RealDictCursor,
        {"id": 2},
    ),
    "connection_factory=LoggingConnection": (
        _logging_connection,
        lambda c: c.cursor(),
        E.LoggingCursor,
        (2,),
    ),
    "app connection_factory with its own cursor()": (
        lambda dsn: psycopg2.connect(dsn, connection_factory=AppConnection),
        lambda c: c.cursor(),
        AppCursor,
        (2,),
    ),
    "_connect(dsn, AppConnection) positional": (
        lambda dsn: psycopg2._connect(dsn, AppConnection),
        lambda c: c.cursor(cursor_factory=E.NamedTupleCursor),
        E.NamedTupleCursor,
        (2,),
    ),
}


@pytest.mark.parametrize("case", list(FACTORIES))
def test_factories_keep_their_behaviour_and_stay_guarded(
    protected: rasp.Config, pg_canary: str, case: str
) -> None:
    connect, make_cursor, cursor_class, honest_row = FACTORIES[case]
    conn = connect(pg_canary)
    conn.autocommit = True
    try:
        cur = make_cursor(conn)
        assert isinstance(cur, cursor_class)
        with request(ATTACK):
            cur.execute(f"SELECT id FROM {TABLE} WHERE name = 'bob'")
            row = cur.fetchone()
            assert row == honest_row
            assert isinstance(row, type(honest_row))
            with pytest.raises(rasp.AttackBlocked):
                cur.execute(ATTACK_SQL)
            with pytest.raises(rasp.AttackBlocked):
                make_cursor(conn).executemany(ATTACK_SQL, [()])
        assert rows(pg_canary) == CANARY
        if isinstance(conn, AppConnection):
            assert conn.tag == "mine"
        if isinstance(conn, E.LoggingConnection):
            log = conn._logobj.getvalue()
            assert "name = 'bob'" in log
            assert "pwned" not in log  # the blocked statement never got to the driver
    finally:
        conn.close()


def test_named_tuple_rows_keep_their_fields(conn: Any) -> None:
    cur = conn.cursor(cursor_factory=E.NamedTupleCursor)
    with request(ATTACK):
        cur.execute(f"SELECT id, name FROM {TABLE} WHERE id = %s", (1,))
        record = cur.fetchone()
        with pytest.raises(rasp.AttackBlocked):
            cur.execute(ATTACK_SQL)
    assert (record.id, record.name) == (1, "alice")


@pytest.mark.parametrize("factory", [None, E.DictCursor, E.RealDictCursor])
def test_monitor_mode_reports_each_statement_once(pg_canary: str, factory: Any) -> None:
    # DictCursor.execute calls cursor.execute through super(): still one check.
    rasp.protect(rasp.Config(mode=rasp.Mode.MONITOR))
    conn = psycopg2.connect(pg_canary)
    conn.autocommit = True
    try:
        cur = conn.cursor(cursor_factory=factory)
        with request(ATTACK) as context:
            cur.execute(ATTACK_SQL)
    finally:
        conn.close()
        rasp.unprotect()
    assert [i.action for i in context.incidents] == ["monitored"]
    assert rows(pg_canary) == {1: "pwned", 2: "pwned"}


# --- install / uninstall ----------------------------------------------------------------


def test_unprotect_restores_the_original_connect(pg_canary: str) -> None:
    c_connect = psycopg2._psycopg._connect
    rasp.protect(rasp.Config())
    try:
        assert psycopg2._connect is not c_connect
        assert psycopg2._connect.__wrapped__ is c_connect
        assert rasp.sinks.installed().count("psycopg2._connect") == 1
    finally:
        rasp.unprotect()
    assert psycopg2._connect is c_connect
    conn = psycopg2.connect(pg_canary)
    conn.autocommit = True
    try:
        assert type(conn) is psycopg2.extensions.connection
        assert type(conn.cursor()) is psycopg2.extensions.cursor
        with request(ATTACK):
            conn.cursor().execute(ATTACK_SQL)  # unguarded now: it runs
    finally:
        conn.close()
    assert rows(pg_canary) == {1: "pwned", 2: "pwned"}


def test_connection_opened_before_protect_is_not_guarded(pg_canary: str) -> None:
    # A documented limit: the class of a connection is fixed when it is made.
    rasp.unprotect()
    before = psycopg2.connect(pg_canary)
    before.autocommit = True
    try:
        rasp.protect(rasp.Config())
        assert not getattr(type(before), "_rasp_guarded", False)
        with request(ATTACK):
            before.cursor().execute(f"SELECT id FROM {TABLE} WHERE name = '{ATTACK}'")
        after = psycopg2.connect(pg_canary)
        try:
            assert getattr(type(after), "_rasp_guarded", False)
        finally:
            after.close()
    finally:
        before.close()
        rasp.unprotect()


_IMPORT_AFTER_PROTECT = """
import rasp
from rasp.context import _CURRENT, RequestContext, UserInput
rasp.protect(rasp.Config())
from psycopg2 import connect  # bound before the first call: still guarded (connect -> _connect)
ctx = RequestContext("GET", "/", lambda c: [UserInput("query", "q", "x' OR '1'='1")])
conn = connect({dsn!r})
token = _CURRENT.set(ctx)
try:
    conn.cursor().execute("SELECT 'x' OR '1'='1'")
except rasp.AttackBlocked:
    print("blocked")
finally:
    _CURRENT.reset(token)
    conn.close()
"""


def test_psycopg2_imported_after_protect_is_guarded(postgres_dsn: str) -> None:
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
