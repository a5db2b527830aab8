"""Alerts: one per distinct attack per window, summaries of repeats, redacted evidence."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY
from serving import in_request

import rasp
from rasp import guard
from rasp.context import UserInput
from rasp.report import JsonFormatter, alerts

ATTACK = "x' OR '1'='1"


def _db() -> sqlite3.Connection:
    """A database opened after the agent started (connections opened before are not
    guarded)."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE users (name TEXT)")
    return connection


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="rasp.alerts"):
        yield caplog


@contextlib.contextmanager
def _agent(**settings: object) -> Iterator[sqlite3.Connection]:
    """The agent protecting with ``settings`` for the block, and a database to attack."""
    rasp.protect(rasp.Config(**settings))  # type: ignore[arg-type]
    try:
        yield _db()
    finally:
        rasp.unprotect()


def _attack(
    db: sqlite3.Connection, key: str = "name", value: str = ATTACK, path: str = "/users"
) -> None:
    """One request whose input ``key`` is injected into a query, at this line of code."""
    with in_request("GET", path, UserInput("query", key, value)):
        with contextlib.suppress(rasp.AttackBlocked):
            db.execute(f"SELECT * FROM users WHERE name = '{value}'")


def _events(records: pytest.LogCaptureFixture, event: str) -> list[dict[str, object]]:
    return [r.rasp for r in records.records if r.name == "rasp.alerts" and r.rasp["event"] == event]  # type: ignore[attr-defined]


def _suppressed() -> float:
    value = REGISTRY.get_sample_value("rasp_alerts_suppressed_total", {"kind": "sql_injection"})
    return value or 0.0


def test_repeats_in_a_window_are_counted_then_summarised(
    records: pytest.LogCaptureFixture,
) -> None:
    with _agent(alert_window=60) as db:
        before = _suppressed()
        for _ in range(5):
            _attack(db)
        (first,) = _events(records, "rasp.attack")
        assert _events(records, "rasp.attack.repeated") == []
        assert _suppressed() == before + 4
        alerts.flush(everything=True)
        (summary,) = _events(records, "rasp.attack.repeated")
        assert summary["repeats"] == 4
        assert summary["first_id"] == first["id"]
        assert (summary["kind"], summary["sink"], summary["input_source"]) == (
            "sql_injection", "sqlite3", "query.name",
        )  # fmt: skip
        message = next(
            r.getMessage() for r in records.records if r.rasp["event"] == "rasp.attack.repeated"
        )  # type: ignore[attr-defined]
        assert "was blocked 4 more times in the last" in message


def test_distinct_attacks_each_get_their_alert(
    records: pytest.LogCaptureFixture,
) -> None:
    with _agent(alert_window=60) as db:
        _attack(db, key="name")
        _attack(db, key="name")  # a repeat
        _attack(db, key="q")  # another input
        with in_request("GET", "/", UserInput("query", "name", ATTACK)):
            with pytest.raises(rasp.AttackBlocked):
                db.execute(f"SELECT name FROM users WHERE name = '{ATTACK}'")  # another line
        sources = [(a["input_source"], a["code_line"]) for a in _events(records, "rasp.attack")]
        assert len(sources) == 3 and len(set(sources)) == 3


def test_a_window_of_zero_logs_every_attack(
    records: pytest.LogCaptureFixture,
) -> None:
    with _agent(alert_window=0) as db:
        for _ in range(3):
            _attack(db)
        assert len(_events(records, "rasp.attack")) == 3


def test_a_summary_comes_when_the_window_ends_without_another_attack(
    records: pytest.LogCaptureFixture,
) -> None:
    with _agent(alert_window=0.3) as db:
        for _ in range(3):
            _attack(db)
        deadline = time.monotonic() + 5
        while not _events(records, "rasp.attack.repeated") and time.monotonic() < deadline:
            time.sleep(0.05)
        (summary,) = _events(records, "rasp.attack.repeated")
        assert summary["repeats"] == 2
        # After the window, the same attack is news again.
        _attack(db)
        assert len(_events(records, "rasp.attack")) == 2


def test_signatures_are_bounded_and_a_forgotten_one_is_summarised_first(
    records: pytest.LogCaptureFixture,
) -> None:
    with _agent(alert_window=60, alert_signatures=2) as db:
        _attack(db, key="a")
        _attack(db, key="a")  # one repeat pending for "a"
        _attack(db, key="b")
        _attack(db, key="c")  # "a" is the least recently seen: forgotten, summarised
        (summary,) = _events(records, "rasp.attack.repeated")
        assert (summary["input_source"], summary["repeats"]) == ("query.a", 1)
        _attack(db, key="a")  # forgotten, so news again
        assert [a["input_source"] for a in _events(records, "rasp.attack")] == [
            "query.a", "query.b", "query.c", "query.a",
        ]  # fmt: skip


def test_secrets_are_redacted_from_the_evidence(
    records: pytest.LogCaptureFixture,
) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
    with _agent(alert_window=0) as db:
        _attack(db, key="password")
        _attack(db, key="name", value=f"{token}' OR '1'='1", path=f"/users/{token}")
        by_key, by_value = _events(records, "rasp.attack")
        assert by_key["input_value"] == f"[redacted] ({len(ATTACK)} characters)"
        assert token not in json.dumps(by_value)
        assert by_value["input_value"] == "[redacted]' OR '1'='1"
        assert by_value["path"] == "/users/[redacted]"


def test_redaction_is_configurable(
    records: pytest.LogCaptureFixture,
) -> None:
    rasp.protect(rasp.Config.load(environ={"RASP_REDACT_KEYS": "pin", "RASP_ALERT_WINDOW": "0"}))
    db = _db()
    try:
        _attack(db, key="pin")
        _attack(db, key="password")  # no longer a secret key: the defaults were replaced
        pin, password = _events(records, "rasp.attack")
        assert pin["input_value"].startswith("[redacted]")  # type: ignore[union-attr]
        assert password["input_value"] == ATTACK
    finally:
        rasp.unprotect()


def test_the_alert_carries_the_trace_it_belongs_to(
    records: pytest.LogCaptureFixture,
) -> None:
    provider = TracerProvider()
    try:
        with _agent(alert_window=0) as db:
            with provider.get_tracer("test").start_as_current_span("GET /users") as span:
                _attack(db)
            (alert,) = _events(records, "rasp.attack")
            assert alert["trace_id"] == format(span.get_span_context().trace_id, "032x")
            assert alert["span_id"] == format(span.get_span_context().span_id, "016x")
    finally:
        provider.shutdown()


def test_a_broken_alert_path_never_stops_the_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(incident: object) -> None:
        raise RuntimeError("log pipeline down")

    monkeypatch.setattr(alerts, "handle", broken)
    monkeypatch.setattr(guard, "raise_internal_errors", False)
    place = {"place": "report_alerts"}
    before = REGISTRY.get_sample_value("rasp_internal_errors_total", place) or 0.0
    with _agent() as db, in_request("GET", "/", UserInput("query", "name", ATTACK)):
        with pytest.raises(rasp.AttackBlocked):
            db.execute(f"SELECT * FROM users WHERE name = '{ATTACK}'")
    assert REGISTRY.get_sample_value("rasp_internal_errors_total", place) == before + 1


def test_json_formatter_renders_any_record() -> None:
    record = logging.LogRecord(
        "rasp.alerts", logging.WARNING, __file__, 1, "hello %s", ("x",), None
    )
    record.rasp = {"event": "rasp.attack", "kind": "ssrf"}
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "hello x"
    assert (document["level"], document["logger"]) == ("WARNING", "rasp.alerts")
    assert document["event"] == "rasp.attack" and document["kind"] == "ssrf"
    assert document["time"].endswith("+00:00")
    plain = logging.LogRecord("app", logging.INFO, __file__, 1, "plain", (), None)
    assert json.loads(JsonFormatter().format(plain))["message"] == "plain"


_FALLBACK = """
import logging, sqlite3, sys
import rasp
from rasp.context import _CURRENT, RequestContext, UserInput
rasp.protect(rasp.Config(alert_format=sys.argv[1], alert_window=0))
if sys.argv[2] == "app-logging":
    logging.basicConfig(stream=sys.stdout, format="APP %(name)s %(message)s")
db = sqlite3.connect(":memory:")
value = "x' OR '1'='1"
token = _CURRENT.set(RequestContext("GET", "/", lambda _c: [UserInput("query", "q", value)]))
try:
    db.execute(f"SELECT '{value}'")
except rasp.AttackBlocked:
    pass
"""


@pytest.mark.parametrize("alert_format", ["json", "text"])
def test_without_app_logging_alerts_go_to_stderr(alert_format: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FALLBACK, alert_format, "none"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    (line,) = done.stderr.splitlines()
    if alert_format == "json":
        assert json.loads(line)["event"] == "rasp.attack"
    else:
        assert " WARNING rasp.alerts rasp: blocked sql_injection " in line


def test_with_app_logging_alerts_go_there_only() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FALLBACK, "json", "app-logging"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert done.stderr == ""
    (line,) = done.stdout.splitlines()
    assert line.startswith("APP rasp.alerts rasp: blocked sql_injection")


def test_attacker_chosen_keys_do_not_mint_signatures(records: pytest.LogCaptureFixture) -> None:
    with _agent(alert_window=60) as db:
        for i in range(30):  # ?junk0=...&junk1=... : the same attack at the same code site
            _attack(db, key=f"junk{i}")
        sources = [a["input_source"] for a in _events(records, "rasp.attack")]
        assert len(sources) == alerts.MAX_KEYS_PER_SITE + 1  # then one for "any other key"
        alerts.flush(everything=True)
        (summary,) = _events(records, "rasp.attack.repeated")
        assert (summary["input_source"], summary["repeats"]) == ("query.*", 30 - 9)


def test_route_and_action_are_part_of_the_signature(records: pytest.LogCaptureFixture) -> None:
    with _agent(alert_window=60) as db:
        for route in ("/a", "/b", "/a"):
            with in_request("GET", route, UserInput("query", "q", ATTACK)) as context:
                context.route = route
                with pytest.raises(rasp.AttackBlocked):
                    db.execute(f"SELECT * FROM users WHERE name = '{ATTACK}'")
        assert [a["route"] for a in _events(records, "rasp.attack")] == ["/a", "/b"]
        rasp.protect(rasp.Config(alert_window=60, mode="monitor"))
        _attack(db, key="q")  # monitored now: not a repeat of the blocked ones
        actions = [a["action"] for a in _events(records, "rasp.attack")]
        assert actions == ["blocked", "blocked", "monitored"]
        alerts.flush(everything=True)
        (summary,) = _events(records, "rasp.attack.repeated")
        assert summary["route"] == "/a" and summary["last_input_value"] == ATTACK


def test_a_secret_inputs_value_is_hidden_in_the_statement_and_path_too(
    records: pytest.LogCaptureFixture, tmp_path: object
) -> None:
    import subprocess as sp

    secret = "s3cr3t-reset-token-42"
    inputs = [UserInput("path", "token", secret), UserInput("body", "api_key", f"{secret}; id")]
    with _agent(alert_window=0), in_request("POST", f"/reset/{secret}", *inputs):
        with pytest.raises(rasp.AttackBlocked):
            sp.run(f"echo {secret}; id", shell=True, check=False)
    (alert,) = _events(records, "rasp.attack")
    assert secret not in json.dumps(alert)
    assert alert["path"] == "/reset/[redacted]"
    assert alert["input_value"].startswith("[redacted]")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("label", "secret"),
    [("body.password", True), ("cookie.sessionid", True), ("cookie.csrftoken", True),
     ("header.authorization", True), ("body.user.api_key", True), ("cookie.PHPSESSID", True),
     ("cookie.lang", False), ("body.classname", False), ("query.cardinality", False),
     ("query.q", False), ("header.user-agent", False)],
)  # fmt: skip
def test_which_keys_name_secrets(label: str, secret: bool) -> None:
    from rasp.config import Config
    from rasp.report.redact import Redactor

    config = Config()
    assert Redactor(config.redact_keys, config.redact_values).secret_key(label) is secret


_AT_EXIT = """
import sqlite3, sys
import rasp
from rasp.context import _CURRENT, RequestContext, UserInput
rasp.protect(rasp.Config(alert_window=60))
db = sqlite3.connect(":memory:")
value = "x' OR '1'='1"
for _ in range(3):
    token = _CURRENT.set(RequestContext("GET", "/", lambda _c: [UserInput("query", "q", value)]))
    try:
        db.execute(f"SELECT '{value}'")
    except rasp.AttackBlocked:
        pass
    _CURRENT.reset(token)
"""


def test_pending_summaries_are_written_at_exit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _AT_EXIT], capture_output=True, text=True, check=True, timeout=60
    )
    events = [json.loads(line)["event"] for line in done.stderr.splitlines()]
    assert events == ["rasp.attack", "rasp.attack.repeated"]
    assert json.loads(done.stderr.splitlines()[1])["repeats"] == 2


def test_without_the_summaries_thread_the_end_of_a_request_writes_them(
    records: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under gevent no thread is started (its greenlets and the agent's real lock do not
    # mix): the end of each request writes the summaries that are due.
    monkeypatch.setattr(alerts, "_green", lambda: True)
    with _agent(alert_window=0.2) as db:
        for _ in range(3):
            _attack(db)
        alerts.tick()
        assert _events(records, "rasp.attack.repeated") == []  # not due yet
        time.sleep(0.3)
        assert _events(records, "rasp.attack.repeated") == []  # no thread wrote it
        alerts.tick()
        (summary,) = _events(records, "rasp.attack.repeated")
        assert summary["repeats"] == 2
