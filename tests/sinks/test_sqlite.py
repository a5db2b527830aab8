from __future__ import annotations

import _sqlite3
import logging
import sqlite3
import sqlite3.dbapi2
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from prometheus_client import REGISTRY

import rasp
from rasp import guard
from rasp.context import _CURRENT
from rasp.detectors import sql as sql_detector
from rasp.sources import wsgi_context

ATTACK = "x' OR '1'='1"
ATTACK_SQL = f"SELECT name FROM users WHERE name = '{ATTACK}'"
HONEST = "O'Brien"
HONEST_SQL = "SELECT name FROM users WHERE name = 'O''Brien'"


@contextmanager
def request(**query: str) -> Iterator[None]:
    """Serve a request whose query string holds ``query``, as the middleware would."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/search", "QUERY_STRING": urlencode(query)}
    token = _CURRENT.set(wsgi_context(environ, None))
    try:
        yield
    finally:
        _CURRENT.reset(token)


@pytest.fixture
def db(protected: rasp.Config) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("INSERT INTO users VALUES ('alice'), ('O''Brien')")
    yield conn
    conn.close()


def _internal_errors(place: str) -> float:
    value = REGISTRY.get_sample_value("rasp_internal_errors_total", {"place": place})
    return value or 0.0


def test_connect_is_wrapped_under_both_names(protected: rasp.Config) -> None:
    assert sqlite3.connect is not _sqlite3.connect
    assert sqlite3.dbapi2.connect is not _sqlite3.connect
    assert {"sqlite3.connect", "sqlite3.dbapi2.connect"} <= set(rasp.sinks.installed())


@pytest.mark.parametrize("connect", [lambda: sqlite3.connect, lambda: sqlite3.dbapi2.connect])
def test_both_connect_names_are_guarded(
    protected: rasp.Config, connect: Callable[[], Callable[..., sqlite3.Connection]]
) -> None:
    conn = connect()(":memory:")
    conn.execute("CREATE TABLE users (name TEXT)")
    with request(name=ATTACK), pytest.raises(rasp.AttackBlocked) as info:
        conn.execute(ATTACK_SQL)
    conn.close()
    incident = info.value.incident
    assert incident.sink == "sqlite3"
    assert incident.dialect == "sqlite"
    assert incident.input_source == "query.name"
    assert incident.input_value == ATTACK


def test_attack_never_reaches_the_database(db: sqlite3.Connection) -> None:
    ran: list[str] = []
    db.set_trace_callback(ran.append)
    with request(name=ATTACK):
        with pytest.raises(rasp.AttackBlocked):
            db.execute(f"UPDATE users SET name = 'pwned' WHERE name = '{ATTACK}'")
        assert db.execute(HONEST_SQL).fetchall() == [(HONEST,)]
    assert ran == [HONEST_SQL]
    assert db.execute("SELECT count(*) FROM users WHERE name = 'pwned'").fetchone() == (0,)


def _statements(conn: sqlite3.Connection) -> dict[str, Callable[[str], Any]]:
    return {
        "Connection.execute": conn.execute,
        "Connection.executemany": lambda sql: conn.executemany(sql, [()]),
        "Connection.executescript": conn.executescript,
        "Cursor.execute": lambda sql: conn.cursor().execute(sql),
        "Cursor.executemany": lambda sql: conn.cursor().executemany(sql, [()]),
        "Cursor.executescript": lambda sql: conn.cursor().executescript(sql),
    }


@pytest.mark.parametrize(
    "method",
    [
        "Connection.execute",
        "Connection.executemany",
        "Connection.executescript",
        "Cursor.execute",
        "Cursor.executemany",
        "Cursor.executescript",
    ],
)
def test_every_execute_method_is_guarded(db: sqlite3.Connection, method: str) -> None:
    run = _statements(db)[method]
    attack = f"UPDATE users SET name = 'pwned' WHERE name = '{ATTACK}'"
    with request(name=ATTACK):
        with pytest.raises(rasp.AttackBlocked):
            run(attack)
        run("UPDATE users SET name = 'carol' WHERE name = 'alice'")  # honest: runs
    names = {row[0] for row in db.execute("SELECT name FROM users")}
    assert names == {"carol", HONEST}


def test_bytes_statement_is_checked(db: sqlite3.Connection) -> None:
    # sqlite3 refuses bytes itself, but the guard decodes them rather than skipping.
    with request(name=ATTACK), pytest.raises(rasp.AttackBlocked):
        db.execute(ATTACK_SQL.encode())  # type: ignore[arg-type]


def test_outside_a_request_nothing_is_blocked(db: sqlite3.Connection) -> None:
    assert db.execute(ATTACK_SQL).fetchall() == [("alice",), (HONEST,)]
    assert db.executescript(f"{ATTACK_SQL};") is not None


def test_honest_input_passes(db: sqlite3.Connection) -> None:
    with request(name=HONEST):
        assert db.execute(HONEST_SQL).fetchall() == [(HONEST,)]
        assert db.execute("SELECT name FROM users WHERE name = ?", (HONEST,)).fetchall()


def test_suppressed_context_is_not_checked(db: sqlite3.Connection) -> None:
    with request(name=ATTACK):
        context = rasp.context.current()
        assert context is not None
        context.suppressed += 1
        assert len(db.execute(ATTACK_SQL).fetchall()) == 2


class MyConnection(sqlite3.Connection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag = "mine"

    def hello(self) -> str:
        return "hello from MyConnection"


@pytest.mark.parametrize("how", ["keyword", "positional"])
def test_user_factory_keeps_working_and_is_guarded(protected: rasp.Config, how: str) -> None:
    if how == "keyword":
        conn = sqlite3.connect(":memory:", factory=MyConnection)
    else:
        conn = sqlite3.connect(":memory:", 5.0, 0, "DEFERRED", True, MyConnection)
    try:
        assert isinstance(conn, MyConnection)
        assert conn.tag == "mine"
        assert conn.hello() == "hello from MyConnection"
        conn.execute("CREATE TABLE users (name TEXT)")
        with request(name=ATTACK), pytest.raises(rasp.AttackBlocked):
            conn.execute(ATTACK_SQL)
    finally:
        conn.close()


def test_user_factory_through_dbapi2(protected: rasp.Config) -> None:
    conn = sqlite3.dbapi2.connect(":memory:", factory=MyConnection)
    try:
        assert isinstance(conn, MyConnection)
        with request(name=ATTACK), pytest.raises(rasp.AttackBlocked):
            conn.cursor().execute(ATTACK_SQL)
    finally:
        conn.close()


class MyCursor(sqlite3.Cursor):
    def first(self) -> Any:
        return self.fetchone()[0]


@pytest.mark.parametrize("how", ["keyword", "positional"])
def test_cursor_factory_keeps_its_behaviour(db: sqlite3.Connection, how: str) -> None:
    cursor = db.cursor(factory=MyCursor) if how == "keyword" else db.cursor(MyCursor)
    assert isinstance(cursor, MyCursor)
    assert cursor.execute("SELECT count(*) FROM users").first() == 2
    with request(name=ATTACK), pytest.raises(rasp.AttackBlocked):
        cursor.execute(ATTACK_SQL)


def test_row_factory_and_context_manager_still_work(db: sqlite3.Connection) -> None:
    db.row_factory = sqlite3.Row
    with db:
        row = db.execute("SELECT name FROM users WHERE name = 'alice'").fetchone()
    assert row["name"] == "alice"


def test_unprotect_restores_the_original_connect() -> None:
    rasp.protect(rasp.Config())
    assert sqlite3.connect is not _sqlite3.connect
    rasp.unprotect()
    assert sqlite3.connect is _sqlite3.connect
    assert sqlite3.dbapi2.connect is _sqlite3.connect
    assert rasp.sinks.installed() == []
    # A connection made now is the plain class, and nothing is checked.
    conn = sqlite3.connect(":memory:")
    try:
        assert type(conn) is sqlite3.Connection
        with request(name=ATTACK):
            conn.execute("SELECT 'x' OR '1'='1'")
    finally:
        conn.close()


def test_protect_twice_is_idempotent() -> None:
    try:
        rasp.protect(rasp.Config())
        first = sqlite3.connect
        rasp.protect(rasp.Config())
        assert sqlite3.connect is first
        assert sqlite3.connect.__wrapped__ is _sqlite3.connect  # type: ignore[attr-defined]
    finally:
        rasp.unprotect()
        rasp.unprotect()
    assert sqlite3.connect is _sqlite3.connect


def test_mode_off_removes_the_guards() -> None:
    try:
        rasp.protect(rasp.Config())
        rasp.protect(rasp.Config(mode=rasp.Mode.OFF))
        assert sqlite3.connect is _sqlite3.connect
    finally:
        rasp.unprotect()


def test_connection_made_before_protect_is_not_guarded_but_new_ones_are() -> None:
    before = sqlite3.connect(":memory:")
    try:
        rasp.protect(rasp.Config())
        after = sqlite3.connect(":memory:")
        with request(name=ATTACK):
            before.execute("SELECT 'x' OR '1'='1'")
            with pytest.raises(rasp.AttackBlocked):
                after.execute("SELECT 'x' OR '1'='1'")
        after.close()
    finally:
        before.close()
        rasp.unprotect()


_IMPORT_ORDER = """
import sys
import rasp
from rasp.context import _CURRENT
from rasp.sources import wsgi_context
{before}
rasp.protect(rasp.Config())
{after}
import _sqlite3
import logging
import sqlite3.dbapi2
assert "sqlite3" in sys.modules
for connect in (sqlite3.connect, sqlite3.dbapi2.connect):
    conn = connect(":memory:")
    environ = {{"REQUEST_METHOD": "GET", "QUERY_STRING": "q=x%27+OR+%271%27%3D%271"}}
    token = _CURRENT.set(wsgi_context(environ, None))
    try:
        conn.execute("SELECT 'x' OR '1'='1'")
    except rasp.AttackBlocked:
        pass
    else:
        raise SystemExit("not guarded: " + repr(connect))
    finally:
        _CURRENT.reset(token)
        conn.close()
rasp.unprotect()
assert sqlite3.connect is _sqlite3.connect, "sqlite3.connect not restored"
assert sqlite3.dbapi2.connect is _sqlite3.connect, "sqlite3.dbapi2.connect not restored"
rasp.protect(rasp.Config())
assert sqlite3.connect.__wrapped__ is _sqlite3.connect, "wrapped twice"
print("ok")
"""


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("import sqlite3", ""),
        ("", "import sqlite3"),
        ("", "import sqlite3.dbapi2\nimport sqlite3"),
    ],
    ids=["imported-before", "imported-after", "dbapi2-imported-after"],
)
def test_import_order_does_not_matter(before: str, after: str) -> None:
    # A fresh interpreter: in this one sqlite3 is long imported.
    code = textwrap.dedent(_IMPORT_ORDER.format(before=before, after=after))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parent,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip() == "ok"


def _broken_detector(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("detector bug")


def test_internal_error_fails_open(db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "raise_internal_errors", False)
    monkeypatch.setattr(sql_detector.Statement, "judge", _broken_detector)
    before = _internal_errors("check_sql")
    with request(name=ATTACK):
        rows = db.execute(ATTACK_SQL).fetchall()
    assert rows == [("alice",), (HONEST,)]
    assert _internal_errors("check_sql") == before + 1


def test_internal_error_raises_in_tests(
    db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_detector.Statement, "judge", _broken_detector)
    with request(name=ATTACK), pytest.raises(RuntimeError, match="detector bug"):
        db.execute(ATTACK_SQL)


def test_internal_error_blocks_when_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "raise_internal_errors", False)
    monkeypatch.setattr(sql_detector.Statement, "judge", _broken_detector)
    rasp.protect(rasp.Config(fail_closed=True))
    conn = sqlite3.connect(":memory:")
    ran: list[str] = []
    conn.set_trace_callback(ran.append)
    try:
        before = _internal_errors("check_sql")
        with request(name=ATTACK), pytest.raises(rasp.AttackBlocked) as info:
            conn.execute("SELECT 'x' OR '1'='1'")
        assert info.value.incident.action == "blocked"
        assert info.value.incident.reason == "agent failed during the check"
        assert _internal_errors("check_sql") == before + 1
        assert ran == []
        # Statements no input reaches never get to the detector: they still run.
        with request(name=ATTACK):
            conn.execute("SELECT 1")
    finally:
        conn.close()
        rasp.unprotect()


def test_protect_warns_about_connections_opened_before(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    rasp.unprotect()
    monkeypatch.setattr(rasp.sinks, "_warned", False)  # the check runs once per process
    early = sqlite3.connect(":memory:")
    try:
        with caplog.at_level(logging.WARNING, logger="rasp.sinks"):
            rasp.protect(rasp.Config())
        warnings = [r.getMessage() for r in caplog.records if r.name == "rasp.sinks"]
        assert any("opened before rasp.protect()" in message for message in warnings)
        assert not getattr(type(early), "_rasp_guarded", False)
    finally:
        early.close()
        rasp.unprotect()
