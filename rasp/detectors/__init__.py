"""Pure injection detectors: no I/O, no configuration, no telemetry.

Every detector has the same shape, ``detect(payload, user_input, ...) -> Finding | None``,
and is a total function: it returns ``None`` rather than raising on input it cannot judge.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["AttackKind", "Finding"]


class AttackKind(str, enum.Enum):
    SQL_INJECTION = "sql_injection"
    SHELL_INJECTION = "shell_injection"
    PATH_TRAVERSAL = "path_traversal"
    SSRF = "ssrf"


@dataclass(frozen=True, slots=True)
class Finding:
    """Why a user input is an injection into a payload (truthy, unlike ``None``)."""

    kind: AttackKind
    reason: str
    """Short, fixed phrase: what the input did to the payload's structure."""
    start: int
    """Where the offending occurrence of the input starts in the payload."""
    end: int
    needle: str
    """The text found in the payload: the input itself, or the form the app turned it into
    (quotes doubled, percent-decoded once more)."""


def as_text(value: object) -> str | None:
    """What a detector reads: a ``str`` as is (a subclass as plain ``str``: it could override
    the methods used), bytes decoded as the OS decodes file names (UTF-8, surrogateescape),
    anything else ``None``."""
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8", "surrogateescape")
        except ValueError:
            return None  # a released memoryview
    return None
