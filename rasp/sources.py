"""Where user input comes from: a WSGI environ or an ASGI scope, and the request body.

Values are kept as the app sees them, decoded once, parsed the way the frameworks parse
them: ``parse_qsl`` with blank values and repeated keys for query strings and form bodies
(UTF-8, bad bytes replaced), the forgiving ``key=value;`` cookie split that Starlette and
Werkzeug use, python-multipart for multipart bodies, ``json`` for JSON bodies (leaf strings
and object keys, with their paths).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from http.cookies import _unquote
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from rasp.context import BodyCapture, RequestContext, UserInput
from rasp.report import metrics

__all__ = ["asgi_context", "collect_inputs", "route_template", "wsgi_context"]

_log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 64
MAX_PATH_SUFFIXES = 32
_NOT_INPUT_HEADERS = frozenset({"cookie"})
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # undecodable bytes, after surrogateescape


def wsgi_context(environ: Mapping[str, Any], body: BodyCapture | None) -> RequestContext:
    method = environ.get("REQUEST_METHOD", "GET")
    path = _wsgi_text(environ.get("PATH_INFO", ""))
    return RequestContext(method, path, _collect_wsgi, body, environ)


def asgi_context(scope: Mapping[str, Any], body: BodyCapture | None) -> RequestContext:
    method, path = scope.get("method", "GET"), scope.get("path", "")
    return RequestContext(method, path, _collect_asgi, body, scope)


def route_template(context: RequestContext) -> str | None:
    """The template of the route that serves the request (``/items/<id>``,
    ``/items/{id}``), as the framework matched it, or None before matching or outside a
    framework that records it: Flask keeps its request, with the rule, in the environ;
    Starlette's and FastAPI's router put the route in the scope, after the templates of the
    mounts it is in (recorded as the request passed them)."""
    raw = context.raw
    if not isinstance(raw, Mapping):
        return None
    request = raw.get("werkzeug.request")
    if request is not None:
        rule = getattr(getattr(request, "url_rule", None), "rule", None)
        return rule if isinstance(rule, str) else None
    route = raw.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    if type(route).__name__ == "Mount":  # a mount that served the request itself
        return context.route_prefix or path
    return context.route_prefix + path


def _wsgi_text(value: str) -> str:
    # PEP 3333 hands us bytes decoded as latin-1; the frameworks re-decode them as UTF-8.
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value


def _collect_wsgi(context: RequestContext) -> list[UserInput]:
    environ: Mapping[str, Any] = context.raw  # type: ignore[assignment]
    # Werkzeug (Flask) keeps its request in the environ, with the route's parameters.
    request = environ.get("werkzeug.request")
    context_params = getattr(request, "view_args", None)
    headers: list[tuple[str, str]] = []
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            headers.append((name[5:].replace("_", "-").lower(), value))
        elif name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            headers.append((name.replace("_", "-").lower(), value))
    query = environ.get("QUERY_STRING", "").encode("latin-1", "replace")
    content_type = environ.get("CONTENT_TYPE", "")
    return collect_inputs(context, query, headers, content_type, context_params)


def _collect_asgi(context: RequestContext) -> list[UserInput]:
    scope: Mapping[str, Any] = context.raw  # type: ignore[assignment]
    headers = [
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, value in scope.get("headers", ())
    ]
    content_type = next((value for name, value in headers if name == "content-type"), "")
    # Starlette's router writes the route's parameters into the scope it was given.
    params = scope.get("path_params")
    query = scope.get("query_string", b"")
    return collect_inputs(context, query, headers, content_type, params)


def collect_inputs(
    context: RequestContext,
    query_string: bytes,
    headers: Iterable[tuple[str, str]],
    content_type: str,
    route_params: Mapping[str, Any] | None = None,
) -> list[UserInput]:
    """Every user input of a request, bounded by ``max_inputs`` of the active config."""
    from rasp.guard import active_config

    limit = active_config().max_inputs
    inputs: list[UserInput] = []
    inputs.extend(_pairs("query", query_string))
    inputs.extend(_path_inputs(context.path, route_params))
    cookie_headers: list[str] = []
    for name, value in headers:
        if name in _NOT_INPUT_HEADERS:
            cookie_headers.append(value)
        else:
            inputs.append(UserInput("header", name, value))
    for header in cookie_headers:
        inputs.extend(_cookies(header))
    body = context.body
    if body is not None and body.data:
        inputs.extend(_body_inputs(bytes(body.data), content_type, body.overflowed))
    if len(inputs) > limit:
        metrics.inputs_skipped("too_many_inputs", len(inputs) - limit)
        del inputs[limit:]
    return inputs


def _path_inputs(path: str, route_params: Mapping[str, Any] | None) -> list[UserInput]:
    """Segments, the route's own parameters, and the path from each segment on.

    A catch-all route parameter (``<path:p>``, ``{p:path}``) spans segments; an attack
    spread over them (``0/**/UNION/**/SELECT ...``) is found whole in the suffixes even
    where the framework's parameters are not visible.
    """
    inputs: list[UserInput] = []
    segments = [s for s in path.split("/") if s]
    for index, segment in enumerate(segments):
        inputs.append(UserInput("path", str(index), segment))
    at = path.find("/")
    index = 0
    while at >= 0 and index < MAX_PATH_SUFFIXES:
        suffix = path[at + 1 :]
        if "/" not in suffix:
            break
        inputs.append(UserInput("path", f"{index}..", suffix))
        at = path.find("/", at + 1)
        index += 1
    if route_params:
        for name, value in route_params.items():
            if isinstance(value, str):
                inputs.append(UserInput("path", str(name), value))
    return inputs


def _pairs(source: str, raw: bytes) -> Iterable[UserInput]:
    # Split as parse_qsl does; not parse_qsl(bytes) itself, which raises on any %-escaped
    # non-ASCII character (and an error here would leave the whole request unchecked).
    for field in raw.decode("latin-1").split("&"):
        if field:
            key, _, value = field.partition("=")
            name = _unquoted(key)[0]
            for text in _unquoted(value):
                yield UserInput(source, name, text)


def _unquoted(raw: str) -> list[str]:
    """A form-encoded value decoded the ways apps see it (usually one way).

    UTF-8 with bad bytes replaced; Werkzeug keeps bad bytes %-escaped; Starlette decodes
    %-escapes as UTF-8 but keeps raw non-ASCII bytes as latin-1.
    """
    text = raw.replace("+", " ")
    if "%" not in text and text.isascii():
        return [text]
    data = unquote_to_bytes(text.encode("latin-1"))
    werkzeug = _BAD_BYTE.sub(
        lambda m: f"%{ord(m.group()) - 0xDC00:02X}", data.decode("utf-8", "surrogateescape")
    )
    return list(dict.fromkeys((data.decode("utf-8", "replace"), werkzeug, unquote(text))))


def _cookies(header: str) -> Iterable[UserInput]:
    # The split Starlette and Werkzeug both use: lenient, never raising on odd cookies.
    raw = _wsgi_text(header)
    for chunk in raw.split(";"):
        if "=" in chunk:
            key, value = chunk.split("=", 1)
        else:
            key, value = "", chunk
        key, value = key.strip(), value.strip()
        if key or value:
            yield UserInput("cookie", key, _unquote(value))


def _body_inputs(data: bytes, content_type: str, truncated: bool) -> list[UserInput]:
    """The body's inputs, parsed by its media type, and by its look when that says nothing
    useful: apps parse JSON with ``force=True`` or ``json.loads(request.body)`` whatever
    the Content-Type says."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    inputs: list[UserInput] = []
    try:
        if media_type == "application/x-www-form-urlencoded":
            if truncated:  # the last field may be cut short; drop it
                data = data[: data.rfind(b"&") + 1]
            return list(_pairs("body", data))
        if media_type == "multipart/form-data":
            return _multipart(data, content_type, truncated)
    except Exception:  # a body the app cannot parse either: nothing to scan
        _log.debug("request body not parsed", exc_info=True)
        return []
    head = data[:64].lstrip()
    if media_type == "application/json" or media_type.endswith("+json") or head[:1] in b"{[":
        return _json(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if not media_type.startswith("text/"):
            return []  # binary: files, images, protobuf
        text = data.decode("utf-8", "replace")
    inputs.append(UserInput("body", "", text))
    if not media_type and b"=" in head:  # a form sent without its Content-Type
        inputs.extend(_pairs("body", data))
    return inputs


# A JSON string token; used to pull values out of a body that is not whole JSON.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _json_fragments(data: bytes) -> list[UserInput]:
    inputs: list[UserInput] = []
    for match in _JSON_STRING.finditer(data):
        try:
            value = json.loads(match.group())
        except ValueError:
            continue
        inputs.append(UserInput("body", "*", value))
    return inputs


def _json(data: bytes) -> list[UserInput]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        # Cut at the body limit, or not JSON after all: its string tokens are still inputs.
        return _json_fragments(data)
    inputs: list[UserInput] = []
    if isinstance(document, str):
        inputs.append(UserInput("body", "", document))
    elif isinstance(document, (dict, list)):
        _flatten(document, "", 0, inputs.append)
    return inputs


# UserInput's own __new__ is Python code; a JSON body can hold hundreds of inputs.
_new_input: Callable[[tuple[str, str, str]], UserInput] = functools.partial(
    tuple.__new__, UserInput
)


def _flatten(
    container: dict[str, Any] | list[Any], path: str, depth: int, add: Callable[[UserInput], None]
) -> None:
    """The strings and keys of ``container`` (at ``depth``), in document order. Nesting is
    bounded by ``MAX_JSON_DEPTH``, so the recursion is too."""
    if depth >= MAX_JSON_DEPTH:
        metrics.inputs_skipped("json_too_deep")
        return
    if isinstance(container, dict):
        items: Iterable[tuple[str, Any]] = container.items()
    else:
        items = ((f"[{position}]", item) for position, item in enumerate(container))
    is_dict = isinstance(container, dict)
    for key, item in items:
        if is_dict:
            child = f"{path}.{key}" if path else key
            add(_new_input(("body", child + "#key", key)))
        else:
            child = path + key
        if type(item) is str:
            add(_new_input(("body", child, item)))
        elif isinstance(item, (dict, list)):
            _flatten(item, child, depth + 1, add)


def _multipart(data: bytes, content_type: str, truncated: bool) -> list[UserInput]:
    try:
        from python_multipart.multipart import MultipartParser, parse_options_header
    except ImportError:  # python-multipart before 0.0.13
        from multipart.multipart import (  # type: ignore[import-untyped, no-redef, unused-ignore]
            MultipartParser,
            parse_options_header,
        )

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        return []
    inputs: list[UserInput] = []
    state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}, "data": bytearray()}

    def on_part_begin() -> None:
        state["headers"] = {}
        state["data"] = bytearray()

    def on_header_field(chunk: bytes, start: int, end: int) -> None:
        state["field"] += chunk[start:end]

    def on_header_value(chunk: bytes, start: int, end: int) -> None:
        state["value"] += chunk[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        state["data"] += chunk[start:end]

    def on_part_end() -> None:
        disposition = state["headers"].get(b"content-disposition", b"")
        _, params = parse_options_header(disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is not None:
            inputs.append(UserInput("file", name, filename.decode("utf-8", "replace")))
        else:
            inputs.append(UserInput("body", name, bytes(state["data"]).decode("utf-8", "replace")))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    parser.write(data)
    if not truncated:  # a body cut at the limit ends mid-part: keep the parts before it
        parser.finalize()
    return inputs
