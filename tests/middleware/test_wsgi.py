from __future__ import annotations

import io
import json
import logging
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import flask
import pytest
from prometheus_client import REGISTRY

import rasp
import rasp.sinks.sqlite
from rasp.config import Config, Mode
from rasp.context import BodyCapture, current

ATTACK = "x' OR '1'='1"
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
LINES: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _unprotect_after() -> Iterator[None]:
    yield
    rasp.unprotect()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    path = str(tmp_path / "app.db")
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE users (name TEXT);
        INSERT INTO users VALUES ('alice'), ('bob');
        CREATE TABLE canary (name TEXT, value TEXT);
        INSERT INTO canary VALUES ('alice', 'untouched'), ('bob', 'untouched');
        """
    )
    conn.commit()
    conn.close()
    return path


def _canary(db_path: str) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT name, value FROM canary ORDER BY name").fetchall()
    finally:
        conn.close()


UNTOUCHED = [("alice", "untouched"), ("bob", "untouched")]


def _flask_app(db_path: str) -> flask.Flask:
    app = flask.Flask(__name__)

    def query(sql: str) -> list[Any]:
        conn = sqlite3.connect(db_path)
        try:
            rows = conn.execute(sql).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()

    @app.get("/search")
    def search() -> Any:
        name = flask.request.args["name"]
        conn = sqlite3.connect(db_path)
        try:
            LINES["search"] = sys._getframe().f_lineno + 1
            rows = conn.execute(f"SELECT name FROM users WHERE name = '{name}'").fetchall()
        finally:
            conn.close()
        return {"names": [row[0] for row in rows]}

    @app.get("/update")
    def update() -> Any:
        name = flask.request.args["name"]
        query(f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
        return {"ok": True}

    @app.get("/swallow")
    def swallow() -> Any:
        try:
            query(
                f"UPDATE canary SET value = 'changed' WHERE name = '{flask.request.args['name']}'"
            )
        except Exception:
            return {"ok": False}, 200
        return {"ok": True}

    @app.get("/bare")
    def bare() -> Any:
        try:
            query(
                f"UPDATE canary SET value = 'changed' WHERE name = '{flask.request.args['name']}'"
            )
        except:  # noqa: E722 - the trap under test
            return {"ok": "swallowed"}, 200
        return {"ok": True}

    @app.post("/form")
    def form() -> Any:
        name = flask.request.form["name"]
        rows = query(f"SELECT name FROM users WHERE name = '{name}'")
        return {"names": [row[0] for row in rows]}

    @app.post("/json")
    def json_body() -> Any:
        name = flask.request.get_json()["user"]["name"]
        rows = query(f"SELECT name FROM users WHERE name = '{name}'")
        return {"names": [row[0] for row in rows]}

    @app.get("/context")
    def context() -> Any:
        return {"set": current() is not None}

    return app


def _client(db_path: str, config: Config | None = None) -> Any:
    app = _flask_app(db_path)
    app.wsgi_app = rasp.wsgi(app.wsgi_app, config or Config())  # type: ignore[method-assign]
    return app.test_client()


# --- a raw WSGI server in miniature --------------------------------------------------


class Served:
    def __init__(self) -> None:
        self.starts: list[tuple[str, list[tuple[str, str]]]] = []
        self.written: list[bytes] = []
        self.chunks: list[bytes] = []
        self.error: BaseException | None = None

    @property
    def status(self) -> str:
        return self.starts[-1][0]

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.starts[-1][1])

    @property
    def body(self) -> bytes:
        return b"".join(self.written + self.chunks)


def environ_for(
    path: str = "/",
    query: dict[str, str] | None = None,
    body: bytes = b"",
    content_type: str = "application/x-www-form-urlencoded",
    **headers: str,
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST" if body else "GET",
        "PATH_INFO": path,
        "QUERY_STRING": urlencode(query or {}),
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    if body:
        environ["CONTENT_TYPE"] = content_type
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        environ["HTTP_" + name.upper()] = value
    return environ


def serve(
    app: Callable[..., Iterable[bytes]], environ: dict[str, Any], close: bool = True
) -> Served:
    served = Served()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        assert not served.chunks and not served.written, "headers after body"
        served.starts.append((status, headers))
        return served.written.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            assert served.starts, "body before headers"
            served.chunks.append(chunk)
    except Exception as error:
        served.error = error
    finally:
        if close:
            getattr(result, "close", lambda: None)()
    return served


def _query_app(db_path: str) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        name = parse_qs(environ["QUERY_STRING"])["name"][0]
        conn = sqlite3.connect(db_path)
        try:
            conn.execute(f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
            conn.commit()
        finally:
            conn.close()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    return app


def _blocked_total() -> float:
    return REGISTRY.get_sample_value("rasp_requests_blocked_total") or 0.0


# --- blocking ----------------------------------------------------------------------------


def test_attack_is_blocked_with_json_403(db_path: str) -> None:
    client = _client(db_path)
    before = _blocked_total()
    response = client.get("/update", query_string={"name": ATTACK})
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    document = response.get_json()
    assert document["error"] == "request_blocked"
    assert document["incident_id"]
    assert response.headers["X-Rasp-Incident"] == document["incident_id"]
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert _canary(db_path) == UNTOUCHED
    assert _blocked_total() == before + 1


def test_honest_request_passes(db_path: str) -> None:
    client = _client(db_path)
    response = client.get("/search", query_string={"name": "alice"})
    assert response.status_code == 200
    assert response.get_json() == {"names": ["alice"]}
    assert "X-Rasp-Incident" not in response.headers
    assert client.get("/update", query_string={"name": "bob"}).status_code == 200
    assert _canary(db_path) == [("alice", "untouched"), ("bob", "changed")]


def test_html_answer_for_browsers(db_path: str) -> None:
    client = _client(db_path)
    response = client.get("/search", query_string={"name": ATTACK}, headers={"Accept": HTML_ACCEPT})
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    incident = response.headers["X-Rasp-Incident"]
    assert f"<code>{incident}</code>" in response.get_data(as_text=True)
    assert "database query" in response.get_data(as_text=True)


@pytest.mark.parametrize("accept", ["application/json, text/html", "*/*", ""])
def test_json_answer_for_api_clients(db_path: str, accept: str) -> None:
    client = _client(db_path)
    response = client.get("/search", query_string={"name": ATTACK}, headers={"Accept": accept})
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("route", ["/swallow", "/bare"])
def test_app_that_swallows_the_block_still_answers_403(db_path: str, route: str) -> None:
    client = _client(db_path)
    response = client.get(route, query_string={"name": ATTACK})
    assert response.status_code == 403
    assert response.get_json()["incident_id"] == response.headers["X-Rasp-Incident"]
    assert _canary(db_path) == UNTOUCHED


def test_bare_except_block_is_still_logged(db_path: str, caplog: pytest.LogCaptureFixture) -> None:
    client = _client(db_path)
    with caplog.at_level(logging.WARNING, logger="rasp.alerts"):
        response = client.get("/bare", query_string={"name": ATTACK})
    assert response.status_code == 403
    (record,) = [r for r in caplog.records if r.name == "rasp.alerts"]
    assert record.rasp["id"] == response.headers["X-Rasp-Incident"]


@pytest.mark.parametrize(
    ("route", "kwargs"),
    [
        ("/form", {"data": {"name": ATTACK}}),
        ("/json", {"json": {"user": {"name": ATTACK}}}),
    ],
)
def test_attack_in_body_is_blocked(db_path: str, route: str, kwargs: dict[str, Any]) -> None:
    client = _client(db_path)
    response = client.post(route, **kwargs)
    assert response.status_code == 403
    honest = {k: json.loads(json.dumps(v).replace(ATTACK, "alice")) for k, v in kwargs.items()}
    assert client.post(route, **honest).get_json() == {"names": ["alice"]}


def test_attack_in_header_and_cookie(db_path: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        value = environ.get("HTTP_X_NAME") or environ["HTTP_COOKIE"].split("=", 1)[1]
        conn = sqlite3.connect(db_path)
        try:
            conn.execute(f"SELECT name FROM users WHERE name = '{value}'")
        finally:
            conn.close()
        start_response("200 OK", [])
        return [b"ok"]

    wrapped = rasp.wsgi(app)
    assert serve(wrapped, environ_for(X_NAME=ATTACK)).status.startswith("403")
    assert serve(wrapped, environ_for(COOKIE=f"name={ATTACK}")).status.startswith("403")
    assert serve(wrapped, environ_for(X_NAME="alice")).status == "200 OK"


# --- monitor and off ----------------------------------------------------------------------


def test_monitor_mode_lets_it_run_and_logs_one_alert(
    db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(db_path, Config(mode=Mode.MONITOR))
    with caplog.at_level(logging.WARNING, logger="rasp.alerts"):
        response = client.get("/search", query_string={"name": ATTACK})
    assert response.status_code == 200
    assert response.get_json() == {"names": ["alice", "bob"]}  # the injection ran
    assert "X-Rasp-Incident" not in response.headers
    records = [r for r in caplog.records if r.name == "rasp.alerts"]
    assert len(records) == 1
    alert = records[0].rasp
    assert alert["event"] == "rasp.attack"
    assert alert["kind"] == "sql_injection"
    assert alert["sink"] == "sqlite3"
    assert alert["dialect"] == "sqlite"
    assert alert["input_source"] == "query.name"
    assert alert["input_value"] == ATTACK
    assert alert["statement"] == "SELECT name FROM users WHERE name = ? OR ?=?"
    assert alert["code_file"] == __file__
    assert alert["code_line"] == LINES["search"]
    assert alert["code_function"] == "search"
    assert alert["mode"] == "monitor"
    assert alert["action"] == "monitored"
    assert (alert["method"], alert["path"]) == ("GET", "/search")
    assert alert["id"]


def test_monitor_mode_does_not_count_a_blocked_request(db_path: str) -> None:
    client = _client(db_path, Config(mode=Mode.MONITOR))
    before = _blocked_total()
    attacks = REGISTRY.get_sample_value(
        "rasp_attacks_total",
        {"kind": "sql_injection", "sink": "sqlite3", "action": "monitored", "route": "/update"},
    )
    client.get("/update", query_string={"name": ATTACK})
    assert _canary(db_path) == [("alice", "changed"), ("bob", "changed")]
    assert _blocked_total() == before
    after = REGISTRY.get_sample_value(
        "rasp_attacks_total",
        {"kind": "sql_injection", "sink": "sqlite3", "action": "monitored", "route": "/update"},
    )
    assert after == (attacks or 0) + 1


def test_off_mode_checks_nothing(db_path: str, caplog: pytest.LogCaptureFixture) -> None:
    client = _client(db_path, Config(mode=Mode.OFF))
    with caplog.at_level(logging.WARNING, logger="rasp.alerts"):
        response = client.get("/update", query_string={"name": ATTACK})
        assert client.get("/context").get_json() == {"set": False}
    assert response.status_code == 200
    assert _canary(db_path) == [("alice", "changed"), ("bob", "changed")]
    assert not [r for r in caplog.records if r.name == "rasp.alerts"]
    assert rasp.sinks.installed() == []


# --- streaming and legacy responses --------------------------------------------------------


def _streaming_app(db_path: str, first: bytes) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        name = parse_qs(environ["QUERY_STRING"])["name"][0]
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield first
        conn = sqlite3.connect(db_path)
        try:
            conn.execute(f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
            conn.commit()
        finally:
            conn.close()
        yield b"secret rest of the page"

    return app


def test_streaming_response_blocked_before_headers(db_path: str) -> None:
    app = rasp.wsgi(_streaming_app(db_path, b""))
    served = serve(app, environ_for(query={"name": ATTACK}))
    assert served.error is None
    assert [status for status, _ in served.starts] == ["403 Forbidden"]
    assert b"secret" not in served.body
    assert json.loads(served.body)["incident_id"] == served.headers["X-Rasp-Incident"]
    assert _canary(db_path) == UNTOUCHED


def test_streaming_honest_response(db_path: str) -> None:
    app = rasp.wsgi(_streaming_app(db_path, b"first "))
    served = serve(app, environ_for(query={"name": "bob"}))
    assert served.starts[0][0] == "200 OK"
    assert served.body == b"first secret rest of the page"


def test_streaming_block_after_headers_aborts(db_path: str) -> None:
    app = rasp.wsgi(_streaming_app(db_path, b"first "))
    served = serve(app, environ_for(query={"name": ATTACK}))
    assert [status for status, _ in served.starts] == ["200 OK"]
    assert served.chunks == [b"first "]
    assert isinstance(served.error, RuntimeError)
    assert _canary(db_path) == UNTOUCHED


def test_legacy_write_app(db_path: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"hello ")
        name = parse_qs(environ["QUERY_STRING"])["name"][0]
        conn = sqlite3.connect(db_path)
        try:
            conn.execute(f"SELECT name FROM users WHERE name = '{name}'")
        finally:
            conn.close()
        write(b"world")
        return []

    served = serve(rasp.wsgi(app), environ_for(query={"name": "alice"}))
    assert served.status == "200 OK"
    assert served.body == b"hello world"
    served = serve(rasp.wsgi(app), environ_for(query={"name": ATTACK}))
    assert served.written == [b"hello "]  # the headers were out: the rest is not sent


def test_legacy_write_app_blocked_before_writing(db_path: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        name = parse_qs(environ["QUERY_STRING"])["name"][0]
        conn = sqlite3.connect(db_path)
        try:
            conn.execute(f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
        except:  # noqa: E722 - the trap under test
            pass
        finally:
            conn.close()
        write(b"secret page")
        return []

    served = serve(rasp.wsgi(app), environ_for(query={"name": ATTACK}))
    assert [status for status, _ in served.starts] == ["403 Forbidden"]
    assert b"secret" not in served.body
    assert json.loads(served.body)["incident_id"]
    assert _canary(db_path) == UNTOUCHED


def test_raw_app_blocked(db_path: str) -> None:
    served = serve(rasp.wsgi(_query_app(db_path)), environ_for(query={"name": ATTACK}))
    assert served.status == "403 Forbidden"
    assert _canary(db_path) == UNTOUCHED


def test_app_error_is_not_hidden(db_path: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        rasp.wsgi(app)(environ_for(), lambda *a: None)
    assert current() is None


def test_exc_info_start_response_replaces_status_before_headers_sent() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise ValueError
        except ValueError:
            start_response("500 Internal Server Error", [("X-E", "1")], sys.exc_info())
        return [b"error page"]

    served = serve(rasp.wsgi(app), environ_for())
    assert served.starts == [("500 Internal Server Error", [("X-E", "1")])]
    assert served.body == b"error page"


# --- the body, as the app reads it -------------------------------------------------------


def _read_all(stream: Any, how: str, size: int) -> bytes:
    if how == "read":
        return stream.read(size)
    if how == "read-no-size":
        return stream.read()
    if how == "readline":
        return b"".join(iter(stream.readline, b""))
    if how == "readlines":
        return b"".join(stream.readlines())
    if how == "readinto":
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            count = stream.readinto(view[got:])
            if not count:
                break
            got += count
        return bytes(buffer[:got])
    if how == "iterate":
        return b"".join(stream)
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["read", "read-no-size", "readline", "readlines", "readinto", "iterate"]
)
def test_body_read_by_the_app_is_captured(db_path: str, how: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        data = _read_all(environ["wsgi.input"], how, int(environ["CONTENT_LENGTH"]))
        name = parse_qs(data.decode())["name"][0]
        conn = sqlite3.connect(db_path)
        try:
            conn.execute(f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
            conn.commit()
        finally:
            conn.close()
        start_response("200 OK", [])
        return [data]

    body = urlencode({"pad": "line\n" * 3, "name": ATTACK}).encode() + b"\n&x=1"
    served = serve(rasp.wsgi(app), environ_for(body=body))
    assert served.status == "403 Forbidden"
    assert _canary(db_path) == UNTOUCHED
    honest = body.replace(urlencode({"name": ATTACK}).encode(), b"name=bob")
    served = serve(rasp.wsgi(app), environ_for(body=honest))
    assert served.status == "200 OK"
    assert served.body == honest  # the app got the same bytes


def test_body_not_read_ahead(db_path: str) -> None:
    seen: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen.append(len(stream.read(4)))
        seen.append(len(stream.read()))
        start_response("200 OK", [])
        return []

    serve(rasp.wsgi(app), environ_for(body=b"0123456789"))
    assert seen == [4, 6]


# --- the context ---------------------------------------------------------------------------


def test_context_set_while_app_runs_and_reset_after() -> None:
    seen: list[object] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        seen.append(current())
        start_response("200 OK", [])
        yield b"a"
        seen.append(current())
        yield b"b"

    assert current() is None
    served = serve(rasp.wsgi(app), environ_for(path="/p"))
    assert served.body == b"ab"
    assert seen[0] is not None and seen[0] is seen[1]
    assert seen[0].path == "/p"  # type: ignore[attr-defined]
    assert current() is None


def test_context_reset_even_if_response_never_closed() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"a"
        yield b"b"

    result = rasp.wsgi(app)(environ_for(), lambda *args: None)
    assert current() is None
    iterator = iter(result)
    assert next(iterator) == b"a"
    assert current() is None  # not leaked into the server's thread between chunks
    del iterator, result
    assert current() is None
    served = serve(rasp.wsgi(app), environ_for(), close=False)
    assert served.body == b"ab"
    assert current() is None


def test_close_is_passed_on_with_the_context_set() -> None:
    closed: list[object] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"x"

        def close(self) -> None:
            closed.append(current())

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body()

    serve(rasp.wsgi(app), environ_for())
    assert len(closed) == 1 and closed[0] is not None
    assert current() is None


def test_double_wrapping_checks_once(
    db_path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    check = rasp.sinks.sqlite.check_sql

    def counting(*args: Any) -> Any:
        calls.append(args[1])
        return check(*args)

    monkeypatch.setattr(rasp.sinks.sqlite, "check_sql", counting)
    captures: list[object] = []

    class CountingCapture(BodyCapture):
        def __init__(self, limit: int) -> None:
            super().__init__(limit)
            captures.append(self)

    monkeypatch.setattr(rasp.middleware.wsgi, "BodyCapture", CountingCapture)
    contexts: list[object] = []

    def inner(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        contexts.append(current())
        return _query_app(db_path)(environ, start_response)

    app = rasp.wsgi(rasp.wsgi(inner))
    before = _blocked_total()
    with caplog.at_level(logging.WARNING, logger="rasp.alerts"):
        served = serve(app, environ_for(query={"name": ATTACK}))
    assert served.status == "403 Forbidden"
    assert len(served.starts) == 1
    assert len(calls) == 1
    assert len([r for r in caplog.records if r.name == "rasp.alerts"]) == 1
    assert _blocked_total() == before + 1
    assert contexts[0] is not None
    assert len(captures) == 1  # one context, one body copy: the inner wrapper stood aside
    assert _canary(db_path) == UNTOUCHED
    served = serve(app, environ_for(query={"name": "bob"}))
    assert served.status == "200 OK"


# --- concurrency -------------------------------------------------------------------------


def test_threads_do_not_see_each_others_input(db_path: str) -> None:
    # The honest route runs the app's own statement, which happens to contain the attacker's
    # exact input: it is blocked only if the attacker's input leaked into its context.
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        params = parse_qs(environ["QUERY_STRING"])
        barrier.wait(timeout=10)  # every request's context is set at this point
        conn = sqlite3.connect(db_path)
        try:
            if environ["PATH_INFO"] == "/attack":
                name = params["name"][0]
            else:
                name = ATTACK  # the app's own text, not user input
            conn.execute(f"SELECT name FROM users WHERE name = '{name}'").fetchall()
        finally:
            conn.close()
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    wrapped = rasp.wsgi(app)
    workers = 16
    barrier = threading.Barrier(workers)
    results: dict[int, Served] = {}

    def worker(number: int) -> None:
        for _ in range(5):
            if number % 2:
                environ = environ_for("/attack", query={"name": ATTACK})
            else:
                environ = environ_for("/honest", query={"name": "alice"})
            results[number] = served = serve(wrapped, environ)
            expected = "403 Forbidden" if number % 2 else "200 OK"
            assert served.status == expected, (number, served.status)

    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            worker(number)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(results) == workers
    assert current() is None


# --- metrics endpoint -----------------------------------------------------------------------


def test_metrics_endpoint(db_path: str) -> None:
    called: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"app"]

    wrapped = rasp.wsgi(app, Config(metrics_path="/-/metrics"))
    served = serve(wrapped, environ_for("/-/metrics"))
    assert served.status.startswith("200")
    assert served.headers["Content-Type"].startswith("text/plain")
    assert b"rasp_requests_blocked_total" in served.body
    assert b"rasp_internal_errors" in served.body
    assert called == []
    assert serve(wrapped, environ_for("/metrics")).body == b"app"
    assert called == ["/metrics"]


def test_no_metrics_endpoint_by_default() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("404 Not Found", [])
        return [b"nope"]

    assert serve(rasp.wsgi(app), environ_for("/metrics")).status == "404 Not Found"
