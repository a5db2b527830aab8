"""A real HTTP server on a loopback address for the network tests, which records the path of
every request it answers and redirects the paths its owner chose; and the real HTTP clients
that call it."""

from __future__ import annotations

import asyncio
import http.client
import http.server
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rasp import AttackBlocked

Redirect = Callable[[str], "tuple[str, str] | None"]
"""A path to the header and target of the redirect answering it (``("Location", "/x")``),
or None to answer the path itself."""


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: list[str]
    redirect: Redirect
    body: bytes

    def do_GET(self) -> None:
        bounce = type(self).redirect(self.path)
        if bounce is not None:
            self.send_response(302)
            self.send_header(*bounce)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def loopback_server(
    host: str = "127.0.0.1", *, redirect: Redirect = lambda _path: None, body: bytes = b"ok"
) -> Iterator[tuple[str, list[str]]]:
    """Serve on ``host`` (a free port) and yield its base URL and the paths it answered."""
    hits: list[str] = []
    attributes = {"hits": hits, "redirect": staticmethod(redirect), "body": body}
    handler = type("Handler", (_Handler,), attributes)
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


# --- the real HTTP clients, one call each: GET the URL, the body back -----------------------


def _urllib(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return bytes(answer.read())


def _http_client(url: str) -> bytes:
    # As a webhook sender does: it parses the URL itself and talks to the host.
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=5)
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        return connection.getresponse().read()
    finally:
        connection.close()


def _requests(url: str) -> bytes:
    requests = pytest.importorskip("requests")
    return bytes(requests.get(url, timeout=5).content)


def _urllib3(url: str) -> bytes:
    urllib3 = pytest.importorskip("urllib3")
    return bytes(urllib3.PoolManager().request("GET", url, redirect=True).data)


def _httpx(url: str) -> bytes:
    httpx = pytest.importorskip("httpx")
    with httpx.Client(follow_redirects=True) as client:
        return bytes(client.get(url).content)


def _httpx_async(url: str) -> bytes:
    httpx = pytest.importorskip("httpx")

    async def main() -> bytes:
        async with httpx.AsyncClient(follow_redirects=True) as client:
            return bytes((await client.get(url)).content)

    return asyncio.run(main())


def _aiohttp(url: str) -> bytes:
    aiohttp = pytest.importorskip("aiohttp")

    async def main() -> bytes:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return bytes(await response.read())

    return asyncio.run(main())


HTTP_CLIENTS: dict[str, Callable[[str], bytes]] = {
    "urllib": _urllib,
    "http.client": _http_client,
    "requests": _requests,
    "urllib3": _urllib3,
    "httpx": _httpx,
    "httpx-async": _httpx_async,
    "aiohttp": _aiohttp,
}
"""Every HTTP client the agent guards, called as an app calls it (a client that is not
installed skips the test)."""

# anyio's happy-eyeballs connect (httpx) runs in a task group, which wraps the block in a
# group; the middleware answers 403 either way, from the request context.
if sys.version_info >= (3, 11):
    EXCEPTION_GROUP: type[BaseException] = BaseExceptionGroup  # noqa: F821 - a 3.11 builtin
else:  # anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup as EXCEPTION_GROUP
BLOCKED = (AttackBlocked, EXCEPTION_GROUP)
"""What a blocked client call raises."""
