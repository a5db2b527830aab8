from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

import rasp
from rasp import guard
from rasp.context import BodyCapture, RequestContext, UserInput
from rasp.sources import MAX_JSON_DEPTH, asgi_context, wsgi_context

BOUNDARY = "----raspboundary"


@pytest.fixture(autouse=True)
def _config() -> Iterator[None]:
    before = guard.active_config()
    guard.configure(rasp.Config())
    yield
    guard.configure(before)


def _environ(
    path: str = "/",
    query: str = "",
    headers: dict[str, str] | None = None,
    content_type: str | None = None,
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        # PEP 3333: the server hands the path over as latin-1 decoded bytes.
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(),
    }
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def _body(data: bytes, limit: int = 1 << 20) -> BodyCapture:
    body = BodyCapture(limit)
    body.add(data)
    return body


def _inputs(context: RequestContext, source: str | None = None) -> list[tuple[str, str]]:
    return [(i.key, i.value) for i in context.inputs() if source is None or i.source == source]


def _wsgi(body: bytes = b"", **kwargs: Any) -> RequestContext:
    return wsgi_context(_environ(**kwargs), _body(body))


def _skipped(reason: str) -> float:
    value = REGISTRY.get_sample_value("rasp_inputs_skipped_total", {"reason": reason})
    return value or 0.0


# --- query strings ---------------------------------------------------------------------


def test_query_repeated_keys_and_blank_values() -> None:
    context = _wsgi(query="a=1&a=2&empty=&flag&b=x")
    assert _inputs(context, "query") == [
        ("a", "1"),
        ("a", "2"),
        ("empty", ""),
        ("flag", ""),
        ("b", "x"),
    ]


def test_query_plus_and_percent_decoding_once() -> None:
    context = _wsgi(query="q=a+b%20c&pct=100%25&double=%2527&k%20ey=v")
    assert _inputs(context, "query") == [
        ("q", "a b c"),
        ("pct", "100%"),
        ("double", "%27"),  # decoded once, as the app sees it
        ("k ey", "v"),
    ]


def test_query_utf8_and_bad_bytes() -> None:
    context = _wsgi(query="name=%C3%A9l%C3%A8ve&bad=%FF&k%C3%A9=1")
    assert _inputs(context, "query") == [
        ("name", "élève"),
        # Starlette replaces a bad byte, Werkzeug keeps it %-escaped: the app may see either.
        ("bad", "\ufffd"),
        ("bad", "%FF"),
        ("k\u00e9", "1"),
    ]


def test_query_bad_byte_cannot_hide_an_attack_from_werkzeug_apps() -> None:
    context = _wsgi(query="q=%FF%27+OR+1%3D1")
    assert "%FF' OR 1=1" in [value for _, value in _inputs(context, "query")]


def test_query_raw_utf8_bytes_seen_as_both_frameworks_decode_them() -> None:
    # Raw (not %-escaped) non-ASCII bytes: Werkzeug decodes UTF-8, Starlette latin-1.
    raw = "q=é' OR 1=1".encode().decode("latin-1")
    values = [value for _, value in _inputs(_wsgi(query=raw), "query")]
    assert values == ["é' OR 1=1", "Ã©' OR 1=1"]


def test_query_input_label() -> None:
    (first,) = [i for i in _wsgi(query="id=1").inputs() if i.source == "query"]
    assert first == UserInput("query", "id", "1")
    assert first.label == "query.id"


def test_asgi_query_string() -> None:
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"a=%27+x&a=2"}
    assert _inputs(asgi_context(scope, None), "query") == [("a", "' x"), ("a", "2")]


# --- bodies --------------------------------------------------------------------------


def test_form_body() -> None:
    context = _wsgi(
        b"user=O%27Brien&note=a+b&note=&x",
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )
    assert _inputs(context, "body") == [
        ("user", "O'Brien"),
        ("note", "a b"),
        ("note", ""),
        ("x", ""),
    ]


def _multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def test_multipart_fields_and_file_names() -> None:
    data = _multipart(
        ("title", None, "caf\u00e9 ' OR 1=1".encode()),
        ("upload", "x' OR '1'='1.png", b"\x89PNG file content is not an input"),
        ("empty", None, b""),
    )
    context = _wsgi(data, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    inputs = [(i.source, i.key, i.value) for i in context.inputs() if i.source in ("body", "file")]
    assert inputs == [
        ("body", "title", "café ' OR 1=1"),
        ("file", "upload", "x' OR '1'='1.png"),
        ("body", "empty", ""),
    ]
    assert not any("PNG" in value for _, _, value in inputs)


def test_multipart_without_boundary_is_ignored() -> None:
    context = _wsgi(b"--x\r\n", content_type="multipart/form-data")
    assert _inputs(context, "body") == []


def test_multipart_garbage_is_ignored() -> None:
    context = _wsgi(
        b"not multipart at all", content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )
    assert [i for i in context.inputs() if i.source in ("body", "file")] == []


def test_json_nested_paths_lists_and_keys() -> None:
    document = {
        "user": {"name": "alice", "tags": ["a", {"deep": "d"}]},
        "n": 1,
        "f": 1.5,
        "ok": True,
        "none": None,
        "k' OR 1=1": "v",
    }
    context = _wsgi(json.dumps(document).encode(), content_type="application/json")
    assert sorted(_inputs(context, "body")) == sorted(
        [
            ("user#key", "user"),
            ("user.name#key", "name"),
            ("user.name", "alice"),
            ("user.tags#key", "tags"),
            ("user.tags[0]", "a"),
            ("user.tags[1].deep#key", "deep"),
            ("user.tags[1].deep", "d"),
            ("n#key", "n"),
            ("f#key", "f"),
            ("ok#key", "ok"),
            ("none#key", "none"),
            ("k' OR 1=1#key", "k' OR 1=1"),
            ("k' OR 1=1", "v"),
        ]
    )
    labels = {i.label for i in context.inputs()}
    assert "body.user.name" in labels
    assert "body.user.tags[0]" in labels


def test_json_top_level_values() -> None:
    context = _wsgi(b'"just a string"', content_type="application/json")
    assert _inputs(context, "body") == [("", "just a string")]
    context = _wsgi(b'["x", 2, ["y"]]', content_type="application/vnd.api+json")
    assert _inputs(context, "body") == [("[0]", "x"), ("[2][0]", "y")]
    context = _wsgi(b"12345", content_type="application/json")
    assert _inputs(context, "body") == []


def test_json_unicode_escapes_decoded() -> None:
    context = _wsgi(b'{"q": "\\u0027 OR 1=1"}', content_type="application/json")
    assert ("q", "' OR 1=1") in _inputs(context, "body")


def test_json_deep_nesting_is_bounded() -> None:
    shallow = "[" * 10 + '"near"' + "]" * 10
    deep = "[" * (MAX_JSON_DEPTH + 5) + '"far"' + "]" * (MAX_JSON_DEPTH + 5)
    data = f'{{"a": {shallow}, "b": {deep}}}'.encode()
    values = [v for _, v in _inputs(_wsgi(data, content_type="application/json"), "body")]
    assert "near" in values
    assert "far" not in values


def test_json_nesting_deeper_than_the_parser_is_ignored() -> None:
    data = b"[" * 100_000 + b"]" * 100_000
    assert _inputs(_wsgi(data, content_type="application/json"), "body") == []


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b"[1,]"])
def test_invalid_json_is_ignored(data: bytes) -> None:
    context = _wsgi(data, content_type="application/json", query="still=here")
    assert _inputs(context, "body") == []
    assert ("still", "here") in _inputs(context, "query")


def test_json_cut_short_still_gives_its_strings() -> None:
    # A body cut at the limit (or sent broken) is not JSON, but its string tokens are inputs.
    context = _wsgi(b'{"a": "x\' OR 1=1", "b": "unfinished', content_type="application/json")
    assert _inputs(context, "body") == [("*", "a"), ("*", "x' OR 1=1"), ("*", "b")]


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", ""])
def test_json_is_parsed_whatever_the_content_type_says(content_type: str) -> None:
    # Flask's get_json(force=True), FastAPI without a Content-Type, json.loads(request.body).
    context = _wsgi(b' {"id": "0 UNION SELECT 1"}', content_type=content_type)
    assert ("id", "0 UNION SELECT 1") in _inputs(context, "body")


def test_form_without_content_type_is_parsed() -> None:
    context = _wsgi(b"id=1+OR+1%3D1&x=2", content_type="")
    assert ("id", "1 OR 1=1") in _inputs(context, "body")


def test_text_body_is_one_input() -> None:
    context = _wsgi("a' OR 1=1 é".encode(), content_type="text/plain; charset=utf-8")
    assert _inputs(context, "body") == [("", "a' OR 1=1 é")]


def test_binary_body_is_not_an_input() -> None:
    context = _wsgi(b"\x89PNG\r\n\x1a\n\xff\x00' OR 1=1", content_type="application/octet-stream")
    assert _inputs(context, "body") == []


def test_textual_body_of_any_type_is_one_input() -> None:
    context = _wsgi(b"x' OR 1=1", content_type="application/octet-stream")
    assert _inputs(context, "body") == [("", "x' OR 1=1")]


def test_body_not_read_by_the_app_is_not_scanned() -> None:
    context = wsgi_context(
        _environ(content_type="application/x-www-form-urlencoded"), BodyCapture(1024)
    )
    assert _inputs(context, "body") == []


# --- headers, cookies, path -------------------------------------------------------------


def test_headers() -> None:
    context = _wsgi(
        headers={"User-Agent": "curl/8' OR 1=1", "X-Forwarded-For": "unknown"},
        content_type="text/plain",
    )
    headers = dict(_inputs(context, "header"))
    assert headers["user-agent"] == "curl/8' OR 1=1"
    assert headers["x-forwarded-for"] == "unknown"
    assert headers["content-type"] == "text/plain"
    labels = {i.label for i in context.inputs()}
    assert "header.user-agent" in labels


def test_asgi_headers() -> None:
    scope = {
        "type": "http",
        "path": "/",
        "headers": [(b"User-Agent", b"sqlmap"), (b"x-b", b"\xe9")],
    }
    assert _inputs(asgi_context(scope, None), "header") == [("user-agent", "sqlmap"), ("x-b", "é")]


def test_cookies_lenient_and_quoted() -> None:
    cookie = 'session=abc; theme="dark \\"blue\\""; flag; =nokey; broken=="x; ;; last=a=b'
    context = _wsgi(headers={"Cookie": cookie})
    assert _inputs(context, "cookie") == [
        ("session", "abc"),
        ("theme", 'dark "blue"'),
        ("", "flag"),
        ("", "nokey"),
        ("broken", '="x'),
        ("last", "a=b"),
    ]
    # The cookie header itself is split into cookies, not scanned whole.
    assert "cookie" not in dict(_inputs(context, "header"))


def test_cookies_utf8_and_octal_escapes() -> None:
    raw = 'name=élan; q="\\047 OR 1=1"'.encode().decode("latin-1")
    context = _wsgi(headers={"Cookie": raw})
    assert _inputs(context, "cookie") == [("name", "élan"), ("q", "' OR 1=1")]


def test_asgi_cookies() -> None:
    scope = {"type": "http", "path": "/", "headers": [(b"cookie", b'a=1; b="x\'y"')]}
    assert _inputs(asgi_context(scope, None), "cookie") == [("a", "1"), ("b", "x'y")]


def test_path_segments() -> None:
    context = _wsgi(path="/users/élan/x' OR 1=1//end/")
    segments = [(k, v) for k, v in _inputs(context, "path") if not k.endswith("..")]
    assert segments == [("0", "users"), ("1", "élan"), ("2", "x' OR 1=1"), ("3", "end")]
    scope = {"type": "http", "path": "/a/b c"}
    segments = [(k, v) for k, v in _inputs(asgi_context(scope, None), "path") if ".." not in k]
    assert segments == [("0", "a"), ("1", "b c")]


def test_path_suffixes_hold_parameters_that_span_segments() -> None:
    # A catch-all route parameter (<path:p>) with an attack spread over segments.
    context = _wsgi(path="/item/0/**/UNION/**/SELECT/**/password/**/FROM/**/users")
    assert ("1..", "0/**/UNION/**/SELECT/**/password/**/FROM/**/users") in _inputs(context, "path")


def test_route_parameters_from_the_framework() -> None:
    scope = {"type": "http", "path": "/i/a/b", "path_params": {"rest": "a/b", "n": 3}}
    assert ("rest", "a/b") in _inputs(asgi_context(scope, None), "path")


def test_context_request_line() -> None:
    context = wsgi_context(_environ(path="/é"), None)
    assert (context.method, context.path) == ("POST", "/é")


# --- bounds ----------------------------------------------------------------------------


def test_max_inputs_truncates_and_counts() -> None:
    guard.configure(rasp.Config(max_inputs=5))
    before = _skipped("too_many_inputs")
    context = _wsgi(query="&".join(f"k{i}=v{i}" for i in range(20)))
    inputs = context.inputs()
    assert len(inputs) == 5
    assert [i.value for i in inputs] == ["v0", "v1", "v2", "v3", "v4"]
    # 20 query values + headers-free environ: 15 were dropped.
    assert _skipped("too_many_inputs") - before == 15


def test_max_inputs_not_counted_when_within_limit() -> None:
    before = _skipped("too_many_inputs")
    _wsgi(query="a=1&b=2").inputs()
    assert _skipped("too_many_inputs") == before


def test_body_capture_limit() -> None:
    body = BodyCapture(10)
    body.add(b"12345")
    body.add(b"")
    assert (bytes(body.data), body.overflowed) == (b"12345", False)
    body.add(b"678901")
    assert (bytes(body.data), body.overflowed) == (b"1234567890", True)
    body.add(b"1")
    assert (bytes(body.data), body.overflowed) == (b"1234567890", True)


def _form_app(db_path: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = dict(
            pair.split("=", 1) for pair in environ["wsgi.input"].read(size).decode().split("&")
        )
        from urllib.parse import unquote_plus

        name = unquote_plus(form["name"])
        with sqlite3.connect(db_path) as conn:
            rows = conn.execute(f"SELECT name FROM users WHERE name = '{name}'").fetchall()
        conn.close()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(rows)).encode()]

    return app


def _post(app: Any, data: bytes) -> tuple[str, bytes]:
    environ = _environ(content_type="application/x-www-form-urlencoded")
    environ["CONTENT_LENGTH"] = str(len(data))
    environ["wsgi.input"] = io.BytesIO(data)
    status: list[str] = []

    def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(s)
        return lambda chunk: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return status[-1], body


@pytest.fixture
def users_db(tmp_path: Any) -> str:
    path = str(tmp_path / "users.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("INSERT INTO users VALUES ('alice'), ('bob')")
    conn.commit()
    conn.close()
    return path


def test_body_over_limit_is_scanned_up_to_the_limit_and_counted(users_db: str) -> None:
    attack = b"name=x%27+OR+%271%27%3D%271"
    padding = b"pad=" + b"p" * 200
    try:
        app = rasp.wsgi(_form_app(users_db), rasp.Config(body_limit=100))
        # Within the limit, the attack in the body is seen and blocked.
        assert _post(app, attack)[0].startswith("403")
        before = _skipped("body_too_large")
        # Over the limit, the first 100 bytes are still scanned: an attack there is blocked.
        assert _post(app, attack + b"&" + padding)[0].startswith("403")
        assert _skipped("body_too_large") == before + 1
        # Beyond the limit nothing is scanned: the query runs, and the skip is counted.
        status, body = _post(app, padding + b"&" + attack)
        assert status == "200 OK"
        assert body == b"2"
        assert _skipped("body_too_large") == before + 2
        # A body within the limit is not counted.
        _post(app, b"name=alice")
        assert _skipped("body_too_large") == before + 2
    finally:
        rasp.unprotect()


def test_asgi_body_over_limit_is_counted() -> None:
    import asyncio

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def run() -> None:
        messages = [
            {"type": "http.request", "body": b"a" * 60, "more_body": True},
            {"type": "http.request", "body": b"a" * 60, "more_body": False},
        ]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: Any) -> None:
            pass

        scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
        await middleware(scope, receive, send)

    try:
        middleware = rasp.asgi(app, rasp.Config(body_limit=100))
        before = _skipped("body_too_large")
        asyncio.run(run())
        assert _skipped("body_too_large") == before + 1
    finally:
        rasp.unprotect()


def test_flask_path_parameter_spread_over_segments_is_blocked(users_db: str) -> None:
    from flask import Flask

    app = Flask(__name__)

    @app.get("/item/<path:p>")
    def item(p: str) -> Any:
        with sqlite3.connect(users_db) as conn:
            rows = conn.execute(f"SELECT name FROM users WHERE rowid = {p}").fetchall()
        conn.close()
        return {"rows": rows}

    try:
        app.wsgi_app = rasp.wsgi(app.wsgi_app, rasp.Config())  # type: ignore[method-assign]
        client = app.test_client()
        assert client.get("/item/1").status_code == 200
        attack = "/item/0/**/UNION/**/SELECT/**/name/**/FROM/**/users"
        assert client.get(attack).status_code == 403
    finally:
        rasp.unprotect()
