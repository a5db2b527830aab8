"""A real HTTP server on a loopback address for the network tests: it records the path of
every request it answers, and redirects the paths its owner chose."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
