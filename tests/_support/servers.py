"""The app servers the end-to-end tests run as subprocesses: a free port to bind, the
server's address and stderr, its start-up and its shutdown."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that no one listens on just now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server a test started: its name and address, and its stderr in a file."""

    name: str
    url: str
    stderr_path: Path
    timeout: float = field(default=20.0, kw_only=True)
    """Of each request the test's clients send."""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=self.timeout, **kwargs)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stderr_size(self) -> int:
        return self.stderr_path.stat().st_size

    def alerts(self, since: int = 0, event: str | None = "rasp.attack") -> list[dict[str, Any]]:
        """The JSON lines of ``event`` (of every event if None) the server wrote to stderr
        after byte offset ``since``."""
        with self.stderr_path.open("rb") as handle:
            handle.seek(since)
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
        found = []
        for line in lines:
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:  # a line being written
                    continue
                if event is None or record.get("event") == event:
                    found.append(record)
        return found


def start(
    server: Server, args: Sequence[str], cwd: Path, env: Mapping[str, str] | None
) -> subprocess.Popen[bytes]:
    """Start ``args`` in ``cwd``, its stderr into ``server.stderr_path``, without waiting."""
    with server.stderr_path.open("wb") as stderr:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


@contextmanager
def running(
    server: Server, args: Sequence[str], cwd: Path, env: Mapping[str, str] | None, probe: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` started, ready (``probe`` answers 200), and stopped at the end."""
    process = start(server, args, cwd, env)
    try:
        wait_ready(server, process, probe)
        yield process
    finally:
        stop(process)


def wait_ready(server: Server, process: subprocess.Popen[bytes], probe: str) -> None:
    """Poll ``probe`` until it answers 200; fail with the server's stderr if it never does."""
    deadline = time.monotonic() + START_TIMEOUT
    with server.client() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{server.name} exited with {process.returncode}:\n{server.stderr()}")
            try:
                if client.get(probe).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"{server.name} did not answer within {START_TIMEOUT} s:\n{server.stderr()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        # SIGINT: quick shutdown for gunicorn (SIGTERM waits for graceful_timeout) and uvicorn.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
