"""The per-request context: one ContextVar, the request's user inputs, and what happened.

The middleware creates a :class:`RequestContext`, sets it for the time the request is
served and resets it by token afterwards. Inputs are parsed lazily, at the first sink
check, and parsed again only if the app has read more of the body since.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from time import perf_counter_ns
from typing import TYPE_CHECKING, NamedTuple, TypeVar

if TYPE_CHECKING:
    from rasp.guard import Incident

_T = TypeVar("_T")

__all__ = ["BodyCapture", "InputMatcher", "RequestContext", "UserInput", "current"]


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
    """A copy of the request body as the app reads it, up to a limit (the rest is not kept,
    and ``overflowed`` says so)."""

    __slots__ = ("complete", "data", "limit", "overflowed")

    def __init__(self, limit: int) -> None:
        self.data = bytearray()
        self.limit = limit
        self.overflowed = False
        self.complete = False

    def add(self, chunk: bytes) -> None:
        if self.overflowed or not chunk:
            return
        room = self.limit - len(self.data)
        if len(chunk) > room:
            # Keep the first ``limit`` bytes: they are still scanned, as far as they parse.
            self.overflowed = True
            self.data += chunk[:room]
            return
        self.data += chunk


class InputMatcher:
    """Finds the inputs whose text (or a common transformation of it) is in a payload.

    With no more needles than the payload has characters, each needle is searched for at C
    speed. With more, needles are grouped by a four-character key around the first character
    that SQL seldom holds (``"lla/"`` in ``Mozilla/5.0``), and the payload's own runs of four
    characters pick the groups worth searching, so the cost follows the payload's length
    rather than the number of inputs.
    """

    __slots__ = ("_groups", "_needles", "_owners", "_short", "empty")

    def __init__(self, inputs: list[UserInput], needles: Callable[[str], Sequence[str]]) -> None:
        found: dict[str, UserInput] = {}
        for user_input in inputs:
            for needle in needles(user_input.value):
                if len(needle) >= 2 and needle not in found:
                    found[needle] = user_input
        self._needles = list(found)
        self._owners = list(found.values())
        self.empty = not found
        """No input has a needle: nothing can ever be found (checked first on hot paths)."""
        self._groups: dict[tuple[str, ...], list[int]] | None = None
        self._short: list[int] = []

    def __len__(self) -> int:
        return len(self._needles)

    def candidates(self, payload: str) -> list[UserInput]:
        """Inputs found in ``payload``, each once, in the order they were collected."""
        needles = self._needles
        if len(needles) <= len(payload):
            if not any(map(payload.__contains__, needles)):
                return []
            positions: Iterable[int] = range(len(needles))
        else:
            groups = self._groups
            if groups is None:
                groups = self._index()
            keys = set(zip(payload, payload[1:], payload[2:], payload[3:], strict=False))
            hit = groups.keys() & keys
            positions = sorted(
                [p for key in hit for p in groups[key]]
                + [p for p in self._short if needles[p] in payload]
            )
            if not positions:
                return []
        hits: list[UserInput] = []
        seen: set[int] = set()
        owners = self._owners
        for position in positions:
            if needles[position] in payload:
                owner = owners[position]
                if id(owner) not in seen:
                    seen.add(id(owner))
                    hits.append(owner)
        return hits

    def _index(self) -> dict[tuple[str, ...], list[int]]:
        groups: dict[tuple[str, ...], list[int]] = {}
        for position, needle in enumerate(self._needles):
            if len(needle) < _KEY_LENGTH:
                self._short.append(position)
                continue
            found = _RARE_IN_SQL.search(needle) or _NON_WORD.search(needle)
            at = found.start() if found is not None else 0
            start = max(0, min(at - 1, len(needle) - _KEY_LENGTH))
            groups.setdefault(tuple(needle[start : start + _KEY_LENGTH]), []).append(position)
        self._groups = groups
        return groups


_KEY_LENGTH = 4
# Characters SQL text seldom holds make the most selective keys; then any non-word one.
_RARE_IN_SQL = re.compile(r"[^\w\s,'\"=()._*;]")
_NON_WORD = re.compile(r"\W")


class RequestContext:
    """What the agent knows about the request being served."""

    __slots__ = (
        "_collect",
        "_inputs",
        "_matchers",
        "blocked",
        "body",
        "check_ns",
        "checks",
        "derived",
        "finished",
        "incidents",
        "method",
        "path",
        "raw",
        "route",
        "route_prefix",
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
        self.route_prefix = ""
        """The path templates of the mounts the request went through (Starlette's Mount)."""
        self.body = body
        self.blocked: Incident | None = None
        self.finished = False
        """Set when the response is done: a task the request started and left running
        (it inherited this context) is no longer judged by this request's inputs."""
        self.incidents: list[Incident] = []
        self.suppressed = 0
        self.derived: list[UserInput] = []
        """Inputs the request gave rise to: the target of a redirect that a user-chosen
        server answered, followed by the app's HTTP client."""
        self.checks: dict[str, int] = {}
        """Guarded calls checked in this request, by sink (flushed to metrics at its end)."""
        self.check_ns: dict[str, int] = {}
        """Nanoseconds spent in those checks, by attack kind."""
        self._collect = collect
        self._inputs: tuple[int, list[UserInput]] | None = None
        self._matchers: dict[object, tuple[int, object]] = {}

    def count(self, sink: str) -> None:
        """Count one check of ``sink`` that took no time worth measuring (a fast exit)."""
        checks = self.checks
        checks[sink] = checks.get(sink, 0) + 1

    def tally(self, sink: str, kind: str, started_ns: int) -> None:
        """Count one check of ``sink`` that started at ``started_ns`` (perf_counter_ns)."""
        checks = self.checks
        checks[sink] = checks.get(sink, 0) + 1
        spent = perf_counter_ns() - started_ns
        check_ns = self.check_ns
        check_ns[kind] = check_ns.get(kind, 0) + spent

    def _version(self) -> int:
        # What the inputs depend on: the body read so far, and the inputs derived since.
        body = self.body
        return (len(body.data) if body is not None else 0) | len(self.derived) << 48

    def inputs(self) -> list[UserInput]:
        """Every user input of the request, parsed again only when more body was read."""
        version = self._version()
        memo = self._inputs
        if memo is not None and memo[0] == version:
            return memo[1]
        inputs = self._collect(self)
        if self.derived:
            inputs = inputs + self.derived
        self._inputs = (version, inputs)
        return inputs

    def derive(self, build: Callable[[list[UserInput]], _T]) -> _T:
        """``build(inputs)``, memoized for this request until the inputs change."""
        version = self._version()
        memo = self._matchers.get(build)
        if memo is not None and memo[0] == version:
            return memo[1]  # type: ignore[return-value]
        self.suppressed += 1
        try:
            built = build(self.inputs())
        finally:
            self.suppressed -= 1
        self._matchers[build] = (version, built)
        return built

    def matcher(self, needles: Callable[[str], Sequence[str]]) -> InputMatcher:
        """The inputs indexed for one detector family; rebuilt when the inputs changed."""
        version = self._version()
        memo = self._matchers.get(needles)
        if memo is not None and memo[0] == version:
            return memo[1]  # type: ignore[return-value]
        # Parsing the inputs may touch guarded calls (a multipart parser spilling to a
        # temporary file): they are the agent's own, not the app's.
        self.suppressed += 1
        try:
            matcher = InputMatcher(self.inputs(), needles)
        finally:
            self.suppressed -= 1
        self._matchers[needles] = (version, matcher)
        return matcher


_CURRENT: ContextVar[RequestContext | None] = ContextVar("rasp_request", default=None)
current = _CURRENT.get
"""The context of the request being served in this thread or task, or None."""
