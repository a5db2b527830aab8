from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import rasp
import rasp.sinks.sqlite
from rasp.config import Config, Mode
from rasp.context import BodyCapture, current

ATTACK = "x' OR '1'='1"
HTML_ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"
UNTOUCHED = [("alice", "untouched"), ("bob", "untouched")]
LINES: dict[str, int] = {}

Message = dict[str, Any]


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


def _run(db_path: str, sql: str) -> list[Any]:
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(sql).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def _starlette(db_path: str) -> Starlette:
    async def search(request: Request) -> Response:
        name = request.query_params["name"]
        conn = sqlite3.connect(db_path)
        try:
            LINES["search"] = sys._getframe().f_lineno + 1
            rows = conn.execute(f"SELECT name FROM users WHERE name = '{name}'").fetchall()
        finally:
            conn.close()
        return JSONResponse({"names": [row[0] for row in rows]})

    def update_sync(request: Request) -> Response:  # runs in a worker thread
        name = request.query_params["name"]
        _run(db_path, f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
        return JSONResponse({"ok": True})

    async def swallow(request: Request) -> Response:
        name = request.query_params["name"]
        try:
            _run(db_path, f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
        except Exception:
            return JSONResponse({"ok": False})
        return JSONResponse({"ok": True})

    async def bare(request: Request) -> Response:
        name = request.query_params["name"]
        try:
            _run(db_path, f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
        except:  # noqa: E722 - the trap under test
            return JSONResponse({"ok": "swallowed"})
        return JSONResponse({"ok": True})

    async def json_body(request: Request) -> Response:
        name = (await request.json())["user"]["name"]
        return JSONResponse({"names": [r[0] for r in _run(db_path, _select(name))]})

    async def form(request: Request) -> Response:
        async with request.form() as data:
            name = str(data["name"])
        return JSONResponse({"names": [r[0] for r in _run(db_path, _select(name))]})

    async def context(request: Request) -> Response:
        return JSONResponse({"set": current() is not None})

    return Starlette(
        routes=[
            Route("/search", search),
            Route("/update", update_sync),
            Route("/swallow", swallow),
            Route("/bare", bare),
            Route("/json", json_body, methods=["POST"]),
            Route("/form", form, methods=["POST"]),
            Route("/context", context),
        ]
    )


def _select(name: str) -> str:
    return f"SELECT name FROM users WHERE name = '{name}'"


def _request(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


def _protected_app(db_path: str, config: Config | None = None) -> Any:
    return rasp.asgi(_starlette(db_path), config or Config())


def _blocked_total() -> float:
    return REGISTRY.get_sample_value("rasp_requests_blocked_total") or 0.0


# --- raw ASGI calls -------------------------------------------------------------------------


def _scope(
    path: str = "/", query: dict[str, str] | None = None, method: str = "POST", **headers: str
) -> Message:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(query or {}).encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("test", 80),
        "client": ("127.0.0.1", 1234),
    }


async def _call(
    app: Any, scope: Message, chunks: list[bytes] | None = None
) -> tuple[list[Message], BaseException | None]:
    incoming: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks or [b""]) - 1}
        for i, chunk in enumerate(chunks or [b""])
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    except BaseException as error:
        return sent, error
    return sent, None


def _status(sent: list[Message]) -> int:
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def _body(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


# --- blocking -------------------------------------------------------------------------------


def test_attack_is_blocked_with_json_403(db_path: str) -> None:
    app = _protected_app(db_path)
    before = _blocked_total()
    response = _request(app, "GET", "/update", params={"name": ATTACK})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["error"] == "request_blocked"
    assert response.headers["x-rasp-incident"] == document["incident_id"]
    assert int(response.headers["content-length"]) == len(response.content)
    assert _canary(db_path) == UNTOUCHED
    assert _blocked_total() == before + 1


def test_honest_requests_pass(db_path: str) -> None:
    app = _protected_app(db_path)
    response = _request(app, "GET", "/search", params={"name": "alice"})
    assert response.status_code == 200
    assert response.json() == {"names": ["alice"]}
    assert _request(app, "GET", "/update", params={"name": "bob"}).status_code == 200
    assert _canary(db_path) == [("alice", "untouched"), ("bob", "changed")]


def test_html_answer_for_browsers(db_path: str) -> None:
    app = _protected_app(db_path)
    response = _request(
        app, "GET", "/search", params={"name": ATTACK}, headers={"Accept": HTML_ACCEPT}
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert f"<code>{response.headers['x-rasp-incident']}</code>" in response.text


@pytest.mark.parametrize("route", ["/swallow", "/bare"])
def test_app_that_swallows_the_block_still_answers_403(db_path: str, route: str) -> None:
    app = _protected_app(db_path)
    response = _request(app, "GET", route, params={"name": ATTACK})
    assert response.status_code == 403
    assert response.json()["incident_id"] == response.headers["x-rasp-incident"]
    assert _canary(db_path) == UNTOUCHED


@pytest.mark.parametrize(
    ("route", "kwargs"),
    [
        ("/json", {"json": {"user": {"name": ATTACK}}}),
        ("/form", {"data": {"name": ATTACK}}),
        ("/form", {"files": {"name": (None, ATTACK)}}),
    ],
)
def test_attack_in_body_is_blocked(db_path: str, route: str, kwargs: dict[str, Any]) -> None:
    app = _protected_app(db_path)
    assert _request(app, "POST", route, **kwargs).status_code == 403
    honest = json.loads(json.dumps(kwargs).replace(ATTACK, "alice"))
    if "files" in honest:
        honest = {"files": {"name": (None, "alice")}}
    response = _request(app, "POST", route, **honest)
    assert response.json() == {"names": ["alice"]}


def test_body_captured_through_receive_in_chunks(db_path: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        data = b""
        while True:
            message = await receive()
            data += message.get("body", b"")
            if not message.get("more_body"):
                break
        name = json.loads(data)["name"]
        _run(db_path, f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": data})

    document = json.dumps({"name": ATTACK}).encode()
    chunks = [document[i : i + 5] for i in range(0, len(document), 5)]
    scope = _scope(**{"content-type": "application/json"})
    sent, error = asyncio.run(_call(rasp.asgi(app), scope, chunks))
    assert error is None
    assert _status(sent) == 403
    assert _canary(db_path) == UNTOUCHED
    honest = json.dumps({"name": "bob"}).encode()
    sent, error = asyncio.run(_call(rasp.asgi(app), scope, [honest[:3], honest[3:]]))
    assert (_status(sent), _body(sent)) == (200, honest)  # the app got the same bytes


def test_body_not_read_by_the_app_is_not_an_input(db_path: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        # The app takes its SQL from its own text only; an unread body changes nothing.
        _run(db_path, _select(ATTACK))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    scope = _scope(**{"content-type": "text/plain"})
    sent, error = asyncio.run(_call(rasp.asgi(app), scope, [ATTACK.encode()]))
    assert (error, _status(sent)) == (None, 200)


# --- monitor and off -----------------------------------------------------------------------


def test_monitor_mode_lets_it_run_and_logs_one_alert(
    db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = _protected_app(db_path, Config(mode=Mode.MONITOR))
    with caplog.at_level(logging.WARNING, logger="rasp.alerts"):
        response = _request(app, "GET", "/search", params={"name": ATTACK})
    assert response.status_code == 200
    assert response.json() == {"names": ["alice", "bob"]}
    records = [r for r in caplog.records if r.name == "rasp.alerts"]
    assert len(records) == 1
    alert = records[0].rasp
    assert alert["kind"] == "sql_injection"
    assert alert["sink"] == "sqlite3"
    assert alert["dialect"] == "sqlite"
    assert alert["input_source"] == "query.name"
    assert alert["input_value"] == ATTACK
    assert alert["statement"] == "SELECT name FROM users WHERE name = ? OR ?=?"
    assert alert["code_file"] == __file__
    assert alert["code_line"] == LINES["search"]
    assert alert["mode"] == "monitor"
    assert alert["action"] == "monitored"
    assert (alert["method"], alert["path"]) == ("GET", "/search")


def test_off_mode_checks_nothing(db_path: str, caplog: pytest.LogCaptureFixture) -> None:
    app = _protected_app(db_path, Config(mode=Mode.OFF))
    with caplog.at_level(logging.WARNING, logger="rasp.alerts"):
        assert _request(app, "GET", "/update", params={"name": ATTACK}).status_code == 200
        assert _request(app, "GET", "/context").json() == {"set": False}
    assert _canary(db_path) == [("alice", "changed"), ("bob", "changed")]
    assert not [r for r in caplog.records if r.name == "rasp.alerts"]


# --- after the response started ------------------------------------------------------------


def test_block_before_the_first_body_byte_becomes_403(db_path: str) -> None:
    # The app's http.response.start is held until body bytes follow, so a block in between
    # still turns the whole answer into the 403.
    async def app(scope: Message, receive: Any, send: Any) -> None:
        name = parse_qs(scope["query_string"].decode())["name"][0]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        _run(db_path, f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
        await send({"type": "http.response.body", "body": b"secret"})

    sent, error = asyncio.run(_call(rasp.asgi(app), _scope(query={"name": ATTACK})))
    assert error is None
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [403]
    assert b"secret" not in _body(sent)
    assert _canary(db_path) == UNTOUCHED


def test_block_after_body_bytes_went_out_aborts(db_path: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        name = parse_qs(scope["query_string"].decode())["name"][0]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first ", "more_body": True})
        _run(db_path, f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
        await send({"type": "http.response.body", "body": b"secret"})

    sent, error = asyncio.run(_call(rasp.asgi(app), _scope(query={"name": ATTACK})))
    assert isinstance(error, RuntimeError)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert b"secret" not in _body(sent)
    assert _canary(db_path) == UNTOUCHED


def test_swallowed_block_after_body_bytes_went_out_aborts(db_path: str) -> None:
    refused: list[BaseException] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        name = parse_qs(scope["query_string"].decode())["name"][0]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first ", "more_body": True})
        try:
            _run(db_path, _select(name))
        except:  # noqa: E722 - the trap under test
            pass
        try:
            await send({"type": "http.response.body", "body": b"secret", "more_body": True})
        except Exception as error:
            refused.append(error)
            raise

    sent, error = asyncio.run(_call(rasp.asgi(app), _scope(query={"name": ATTACK})))
    assert error is not None
    assert len(refused) == 1
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert b"secret" not in _body(sent)


def test_streaming_response_that_queries_while_streaming(db_path: str) -> None:
    async def stream(request: Request) -> Response:
        from starlette.responses import StreamingResponse

        name = request.query_params["name"]

        async def body() -> Any:
            yield b"first "
            _run(db_path, f"UPDATE canary SET value = 'changed' WHERE name = '{name}'")
            yield b"secret"

        return StreamingResponse(body())

    app = rasp.asgi(Starlette(routes=[Route("/s", stream)]))
    sent, error = asyncio.run(_call(app, _scope("/s", {"name": ATTACK}, "GET")))
    # The headers went out before the query: the response is cut short, not completed.
    assert isinstance(error, RuntimeError)
    assert b"secret" not in _body(sent)
    assert _canary(db_path) == UNTOUCHED
    sent, error = asyncio.run(_call(app, _scope("/s", {"name": "bob"}, "GET")))
    assert error is None
    assert _body(sent) == b"first secret"


# --- other scopes pass through -------------------------------------------------------------


def test_lifespan_passes_through() -> None:
    seen: list[Any] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append((scope["type"], receive, send, current()))
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(rasp.asgi(app)({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert seen == [("lifespan", receive, send, None)]
    assert sent == [{"type": "lifespan.startup.complete"}]


def test_starlette_lifespan_and_websocket_pass_through() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"{text}:{current() is not None}")
        await websocket.close()

    app = rasp.asgi(Starlette(routes=[WebSocketRoute("/ws", echo)], lifespan=lifespan))

    async def drive(scope: Message, incoming: list[Message]) -> list[Message]:
        sent: list[Message] = []

        async def receive() -> Message:
            return incoming.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    async def go() -> tuple[list[Message], list[Message]]:
        lifespan_sent = await drive(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
        )
        ws_scope = {**_scope("/ws", query={"q": ATTACK}), "type": "websocket"}
        ws_sent = await drive(
            ws_scope,
            [
                {"type": "websocket.connect"},
                {"type": "websocket.receive", "text": ATTACK},
                {"type": "websocket.disconnect", "code": 1000},
            ],
        )
        return lifespan_sent, ws_sent

    lifespan_sent, ws_sent = asyncio.run(go())
    assert events == ["startup", "shutdown"]
    assert [m["type"] for m in lifespan_sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert [m["type"] for m in ws_sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert ws_sent[1]["text"] == f"{ATTACK}:False"


def test_websocket_scope_passes_through_raw() -> None:
    seen: list[Any] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append((receive, send, current()))

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        pass

    asyncio.run(rasp.asgi(app)({"type": "websocket", "path": "/ws"}, receive, send))
    assert seen == [(receive, send, None)]


# --- the context ---------------------------------------------------------------------------


def test_context_set_during_request_and_reset_after() -> None:
    seen: list[Any] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append(current())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def go() -> Any:
        _sent, error = await _call(rasp.asgi(app), _scope("/p"))
        assert error is None
        return current()

    assert asyncio.run(go()) is None
    assert seen[0] is not None and seen[0].path == "/p"


def test_context_reset_when_the_app_fails() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        raise ZeroDivisionError

    async def go() -> Any:
        _sent, error = await _call(rasp.asgi(app), _scope())
        assert isinstance(error, ZeroDivisionError)
        return current()

    assert asyncio.run(go()) is None


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

    monkeypatch.setattr(rasp.middleware.asgi, "BodyCapture", CountingCapture)
    app = rasp.asgi(rasp.asgi(_starlette(db_path)))
    before = _blocked_total()
    with caplog.at_level(logging.WARNING, logger="rasp.alerts"):
        response = _request(app, "GET", "/update", params={"name": ATTACK})
    assert response.status_code == 403
    assert len(calls) == 1
    assert len(captures) == 1
    assert len([r for r in caplog.records if r.name == "rasp.alerts"]) == 1
    assert _blocked_total() == before + 1
    assert _canary(db_path) == UNTOUCHED


# --- concurrency ---------------------------------------------------------------------------


def test_tasks_do_not_see_each_others_input(db_path: str) -> None:
    # The honest request runs the app's own statement, which contains the attacker's exact
    # input: it is blocked only if the attacker's input leaked into its context.
    tasks = 24
    rounds = 3

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await barrier.wait()  # every request's context is set now
        if scope["path"] == "/attack":
            name = parse_qs(scope["query_string"].decode())["name"][0]
        else:
            name = ATTACK  # the app's own text
        await asyncio.sleep(0)
        _run(db_path, _select(name))
        await asyncio.sleep(0)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    wrapped = rasp.asgi(app)

    async def one(number: int) -> int:
        if number % 2:
            scope = _scope("/attack", query={"name": ATTACK})
        else:
            scope = _scope("/honest", query={"name": "alice"})
        sent, error = await _call(wrapped, scope)
        assert error is None
        return _status(sent)

    async def go() -> list[int]:
        nonlocal barrier
        statuses: list[int] = []
        for _ in range(rounds):
            barrier = asyncio.Barrier(tasks)
            statuses += await asyncio.gather(*(one(n) for n in range(tasks)))
        return statuses

    barrier: asyncio.Barrier
    statuses = asyncio.run(go())
    assert statuses == [403 if n % 2 else 200 for n in range(tasks)] * rounds


def test_sync_endpoints_in_worker_threads_are_guarded(db_path: str) -> None:
    app = _protected_app(db_path)

    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(
                *(
                    client.get("/update", params={"name": ATTACK if n % 2 else "nobody"})
                    for n in range(20)
                )
            )
        return [r.status_code for r in responses]

    assert asyncio.run(go()) == [403 if n % 2 else 200 for n in range(20)]
    assert _canary(db_path) == UNTOUCHED


# --- metrics endpoint ----------------------------------------------------------------------


def test_metrics_endpoint(db_path: str) -> None:
    called: list[str] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        called.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    wrapped = rasp.asgi(app, Config(metrics_path="/-/metrics"))
    response = _request(wrapped, "GET", "/-/metrics")
    assert response.status_code == 200
    assert "rasp_requests_blocked_total" in response.text
    assert called == []
    assert _request(wrapped, "GET", "/metrics").text == "app"
    assert called == ["/metrics"]


def test_a_block_in_a_background_task_after_the_response_is_quiet(tmp_path: Any) -> None:
    # Starlette runs BackgroundTasks after the response went out: the injected statement
    # must not run, the attack is counted, and nothing is raised into the server (there
    # is no response left to abort).
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    db_path = str(tmp_path / "bg.db")
    ran: list[str] = []

    def job(name: str) -> None:
        db = sqlite3.connect(db_path)
        try:
            db.execute(f"INSERT INTO log VALUES ('{name}')")
            ran.append(name)
        finally:
            db.close()

    async def endpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse(
            "queued", background=BackgroundTask(job, request.query_params["q"])
        )

    setup = sqlite3.connect(db_path)
    setup.execute("CREATE TABLE log (name TEXT)")
    setup.close()
    app = rasp.asgi(Starlette(routes=[Route("/", endpoint)]), Config(alert_window=0))
    try:
        attacks = (
            REGISTRY.get_sample_value(
                "rasp_attacks_total",
                {"kind": "sql_injection", "sink": "sqlite3", "action": "blocked", "route": "/"},
            )
            or 0.0
        )
        response = _request(app, "GET", "/", params={"q": "x'); DELETE FROM log; --"})
        assert (response.status_code, response.text) == (200, "queued")
        assert ran == []
        assert (
            REGISTRY.get_sample_value(
                "rasp_attacks_total",
                {"kind": "sql_injection", "sink": "sqlite3", "action": "blocked", "route": "/"},
            )
            == attacks + 1
        )
        _request(app, "GET", "/", params={"q": "alice"})
        assert ran == ["alice"]
    finally:
        rasp.unprotect()
