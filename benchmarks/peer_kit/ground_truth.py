"""The accuracy cases' ground truth, seen from outside the agents: an audit hook that
records what one sink call really did (files opened, sockets connected, processes started)
and refuses any name lookup or connection that would leave the machine; and the rule that
tells a library's own error, which a case catches, from an agent's, which must propagate."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

AGENT_MODULES = ("aikido_zen", "ddtrace", "rasp")


class OffMachine(RuntimeError):
    """A case tried to look up a real name or to connect off loopback (refused)."""


@dataclass
class Seen:
    """What one sink call really did (the oracle's twin calls are not recorded)."""

    opened: list[str] = field(default_factory=list)
    connected: list[tuple[str, int]] = field(default_factory=list)
    spawned: int = 0
    compiled: bool = False  # SQLite's authorizer or trace callback fired
    target: str = ""  # the path family: the one file whose opening counts
    family: str = ""

    @property
    def reached(self) -> bool:
        if self.family == "sql":
            return self.compiled
        if self.family == "shell":
            return self.spawned > 0
        if self.family == "path":
            return bool(self.target) and self.target in self.opened
        return bool(self.connected)


LOCAL = threading.local()
_IPV4_SPELLING = re.compile(r"[0-9a-fA-FxX.]{1,64}")


def _literal(host: str) -> bool:
    text = host.strip("[]").split("%")[0]
    try:
        socket.inet_pton(socket.AF_INET6, text)
        return True
    except OSError:
        pass
    if not _IPV4_SPELLING.fullmatch(text):
        return False
    try:
        socket.inet_aton(text)  # the C parser getaddrinfo uses: 127.1, 0x7f.1, 0177.0.0.1
        return True
    except OSError:
        return False


def local_address(host: str) -> bool:
    address = ipaddress.ip_address(host.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _audit(event: str, args: tuple[Any, ...]) -> None:
    seen: Seen | None = getattr(LOCAL, "seen", None)
    if seen is None:
        return
    if event == "open":
        seen.opened.append(os.fsdecode(args[0]) if isinstance(args[0], (str, bytes)) else "")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if isinstance(host, str) and host.lower() != "localhost" and not _literal(host):
            raise OffMachine(f"name lookup refused: {host[:60]!r}")
    elif event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and isinstance(address[0], str):
            if not local_address(address[0]):
                raise OffMachine(f"connection refused: {address[0]!r}")
            seen.connected.append((address[0], int(address[1])))
    elif event in ("subprocess.Popen", "os.system", "os.posix_spawn"):
        seen.spawned += 1


_HOOKED = threading.Lock()


def install() -> None:
    # Once per process, on first use: an audit hook cannot be removed again.
    with _HOOKED:
        if not getattr(install, "done", False):
            sys.addaudithook(_audit)
            install.done = True  # type: ignore[attr-defined]


@contextmanager
def watching(seen: Seen) -> Iterator[Seen]:
    before = getattr(LOCAL, "seen", None)
    LOCAL.seen = seen
    try:
        yield seen
    finally:
        LOCAL.seen = before


def last_reached() -> bool:
    """Whether this thread's last ``handle`` call reached its sink, also when it raised."""
    seen: Seen | None = getattr(LOCAL, "last", None)
    return seen is not None and seen.reached


def _agents(error: BaseException) -> BaseException | None:
    """The agent's exception behind ``error`` (itself, a URLError's reason, its cause)."""
    pending: list[object] = [error]
    while pending:
        item = pending.pop()
        if isinstance(item, BaseException):
            if type(item).__module__.startswith(AGENT_MODULES):
                return item
            pending += [getattr(item, "reason", None), item.__cause__, item.__context__]
    return None


def caught(error: BaseException) -> str:
    """The library error's text for ``detail``; an agent's exception is raised again."""
    agent = _agents(error)
    if agent is not None:
        raise agent
    return f"{type(error).__name__}: {str(error)[:120]}"
