"""Start-up and shutdown of the app servers the end-to-end tests run as subprocesses
(tests/e2e/conftest.py and tests/e2e/drivers/conftest.py)."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Protocol

import httpx
import pytest

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class Served(Protocol):
    @property
    def name(self) -> str: ...

    def client(self) -> httpx.Client: ...

    def stderr(self) -> str: ...


def wait_ready(served: Served, process: subprocess.Popen[bytes], probe: str) -> None:
    """Poll ``probe`` until it answers 200; fail with the server's stderr if it never does."""
    deadline = time.monotonic() + START_TIMEOUT
    with served.client() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{served.name} exited with {process.returncode}:\n{served.stderr()}")
            try:
                if client.get(probe).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"{served.name} did not answer within {START_TIMEOUT} s:\n{served.stderr()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        # SIGINT: quick shutdown for gunicorn (SIGTERM waits for graceful_timeout) and uvicorn.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
