"""Secrets kept out of the evidence: alerts, trace events and logs show the input, the
statement and the path with them replaced by ``[redacted]``.

An input whose key names a secret (``body.password``, ``header.authorization``,
``cookie.sessionid``) is hidden whole, keeping only its length; anywhere else, the text
that matches one of the value patterns (a JSON web token, a bearer credential, an AWS key
id, ``password=...`` pairs) is. Evidence is truncated before it gets here, so the patterns
run on a few hundred characters at most.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[redacted]"


class Redactor:
    __slots__ = ("_keys", "_patterns", "source")

    def __init__(self, keys: Iterable[str], patterns: Iterable[str]) -> None:
        keys, patterns = tuple(keys), tuple(patterns)
        self.source = (keys, patterns)
        self._keys = tuple(key.lower() for key in keys)
        # Each on its own: a pattern may start with its own flags, (?i).
        self._patterns = tuple(re.compile(pattern) for pattern in patterns)

    def input(self, label: str, value: str) -> str:
        """``value`` of the input ``label`` as the evidence may show it."""
        lowered = label.lower()
        if any(key in lowered for key in self._keys):
            return f"{REDACTED} ({len(value)} characters)"
        return self.text(value)

    def text(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text
