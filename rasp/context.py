"""The per-request context: one ContextVar, the request's user inputs, and what happened.

The middleware creates a :class:`RequestContext`, sets it for the time the request is
served and resets it by token afterwards. Inputs are parsed lazily, at the first sink
check, and parsed again only if the app has read more of the body since.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from rasp.guard import Incident

__all__ = ["BodyCapture", "InputMatcher", "RequestContext", "UserInput", "current"]

# Above this many needles the matcher indexes them by their first two characters, so the
# cost of a check follows the statement's length, not the number of inputs.
_INDEX_THRESHOLD = 24


class UserInput(NamedTuple):
    source: str
    """query, body, header, cookie, path, file (an uploaded file's name)."""
    key: str
    """The name or path within the source: ``name``, ``user.name``, ``user-agent``."""
    value: str

    @property
    def label(self) -> str:
        return f"{self.source}.{self.key}" if self.key else self.source


class BodyCapture:
    """A copy of the request body as the app reads it, up to a limit."""

    __slots__ = ("complete", "data", "limit", "overflowed")

    def __init__(self, limit: int) -> None:
        self.data = bytearray()
        self.limit = limit
        self.overflowed = False
        self.complete = False

    def add(self, chunk: bytes) -> None:
        if self.overflowed or not chunk:
            return
        if len(self.data) + len(chunk) > self.limit:
            self.overflowed = True
            self.data.clear()
            return
        self.data += chunk


class InputMatcher:
    """Finds the inputs whose text (or a common transformation of it) is in a payload."""

    __slots__ = ("_entries", "_index")

    def __init__(self, inputs: list[UserInput], needles: Callable[[str], list[str]]) -> None:
        entries: list[tuple[str, UserInput]] = []
        seen: set[str] = set()
        for user_input in inputs:
            for needle in needles(user_input.value):
                if len(needle) >= 2 and needle not in seen:
                    seen.add(needle)
                    entries.append((needle, user_input))
        self._entries = entries
        self._index: dict[tuple[str, str], list[tuple[str, UserInput]]] | None = None
        if len(entries) > _INDEX_THRESHOLD:
            index: dict[tuple[str, str], list[tuple[str, UserInput]]] = {}
            for entry in entries:
                index.setdefault((entry[0][0], entry[0][1]), []).append(entry)
            self._index = index

    def __len__(self) -> int:
        return len(self._entries)

    def candidates(self, payload: str) -> Iterator[UserInput]:
        """Inputs found in ``payload``, each once, in the order they were collected."""
        index = self._index
        if index is None:
            entries = self._entries
        else:
            # Two-character windows of the payload, computed at C speed, meet the index keys.
            grams = index.keys() & set(zip(payload, payload[1:]))
            if not grams:
                return
            entries = [entry for gram in grams for entry in index[gram]]
        yielded: set[int] = set()
        for needle, user_input in entries:
            if needle in payload and id(user_input) not in yielded:
                yielded.add(id(user_input))
                yield user_input


class RequestContext:
    """What the agent knows about the request being served."""

    __slots__ = (
        "_collect",
        "_matchers",
        "blocked",
        "body",
        "incidents",
        "method",
        "path",
        "raw",
        "route",
        "suppressed",
    )

    def __init__(
        self,
        method: str,
        path: str,
        collect: Callable[[RequestContext], list[UserInput]],
        body: BodyCapture | None = None,
        raw: object = None,
    ) -> None:
        self.method = method
        self.raw = raw
        """The server's own request object (WSGI environ, ASGI scope), read by ``collect``."""
        self.path = path
        self.route: str | None = None
        self.body = body
        self.blocked: Incident | None = None
        self.incidents: list[Incident] = []
        self.suppressed = 0
        self._collect = collect
        self._matchers: dict[object, tuple[int, InputMatcher]] = {}

    def inputs(self) -> list[UserInput]:
        return self._collect(self)

    def matcher(self, needles: Callable[[str], list[str]]) -> InputMatcher:
        """The inputs indexed for one detector family; rebuilt when more body was read."""
        body_size = len(self.body.data) if self.body is not None else 0
        memo = self._matchers.get(needles)
        if memo is not None and memo[0] == body_size:
            return memo[1]
        matcher = InputMatcher(self._collect(self), needles)
        self._matchers[needles] = (body_size, matcher)
        return matcher


_CURRENT: ContextVar[RequestContext | None] = ContextVar("rasp_request", default=None)
current = _CURRENT.get
"""The context of the request being served in this thread or task, or None."""
