"""Secrets kept out of the evidence: alerts, trace events and logs show the input, the
statement and the path with them replaced by ``[redacted]``.

An input whose key names a secret (``body.password``, ``header.authorization``,
``cookie.sessionid``) is hidden whole, keeping only its length, and so is its value wherever
it appears in the statement or the path; anywhere else, the text that matches one of the
value patterns (a JSON web token, a bearer credential, an AWS key id, ``password=...``
pairs) is. A key names a secret when one of ``redact_keys`` occurs in the key's name (the
label without its source, ``query.``, ``cookie.``...) touching a word boundary on one side
at least: ``sessionid``, ``csrftoken`` and ``user.password`` do, ``classname`` does not.
Evidence is truncated to a few thousand characters before the patterns run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[redacted]"
_MAX_KNOWN = 4096


class Redactor:
    __slots__ = ("_keys", "_known", "_patterns", "source")

    def __init__(self, keys: Iterable[str], patterns: Iterable[str]) -> None:
        keys, patterns = tuple(keys), tuple(patterns)
        self.source = (keys, patterns)
        self._keys = tuple(key.lower() for key in keys if key)
        # Each on its own: a pattern may start with its own flags, (?i).
        self._patterns = tuple(re.compile(pattern) for pattern in patterns)
        self._known: dict[str, bool] = {}  # labels repeat from request to request

    def secret_key(self, label: str) -> bool:
        """Does the input ``label`` (``source.key``) name a secret?"""
        known = self._known.get(label)
        if known is None:
            if len(self._known) >= _MAX_KNOWN:
                self._known.clear()
            known = self._known[label] = self._names_secret(label)
        return known

    def _names_secret(self, label: str) -> bool:
        name = label.partition(".")[2].lower() or label.lower()
        for key in self._keys:
            start = name.find(key)
            while start >= 0:
                end = start + len(key)
                if (start == 0 or not name[start - 1].isalnum()) or (
                    end == len(name) or not name[end].isalnum()
                ):
                    return True
                start = name.find(key, start + 1)
        return False

    def input(self, label: str, value: str) -> str:
        """``value`` of the input ``label`` as the evidence may show it."""
        if self.secret_key(label):
            return f"{REDACTED} ({len(value)} characters)"
        return self.text(value)

    def values(self, text: str, secrets: Sequence[str]) -> str:
        """``text`` with each of the ``secrets`` (values of secret inputs) replaced."""
        for secret in sorted(secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def text(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text
