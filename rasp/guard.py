"""The one place where a sink call becomes a decision: let it run, alert, or block it.

Sinks call :func:`check_sql` (and its siblings, as families are added) before the original
call. The check runs inside a containment block: an error in the agent is caught, counted
and logged once per place, and the call goes on (fail open), unless ``fail_closed`` is set.
A block raises :class:`AttackBlocked` *outside* that block, so it always reaches the app.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from time import perf_counter_ns
from types import FrameType
from typing import Any, NamedTuple

from rasp import outbound
from rasp.config import Config, Mode
from rasp.context import RequestContext, UserInput
from rasp.detectors import AttackKind, Finding
from rasp.detectors import path as path_detector
from rasp.detectors import shell as shell_detector
from rasp.detectors import sql as sql_detector
from rasp.detectors import ssrf as ssrf_detector
from rasp.lexers.sql import Dialect
from rasp.report import emit, metrics
from rasp.report.redact import Redactor
from rasp.sources import route_template

__all__ = [
    "AttackBlocked",
    "Incident",
    "Sink",
    "active_config",
    "check_address",
    "check_command",
    "check_path",
    "check_sql",
    "configure",
    "note_redirect",
]

_log = logging.getLogger(__name__)

# Kinds as the check metrics label them.
_SQL, _SHELL, _PATH, _SSRF = (
    AttackKind.SQL_INJECTION.value, AttackKind.SHELL_INJECTION.value,
    AttackKind.PATH_TRAVERSAL.value, AttackKind.SSRF.value,
)  # fmt: skip
MAX_INPUT_CHARS = 256
MAX_STATEMENT_CHARS = 2048
_AGENT_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Database layers between the app and the driver: the app's own line is above them.
_DATA_LAYERS = ("wrapt", "sqlalchemy", "django.db", "peewee", "tortoise", "databases")
# Servers run the app; a check in a task the app's client spawned (anyio's happy-eyeballs
# connect) has no app frame above it, and the server's own frame would be a wrong answer.
_SERVERS = ("uvicorn", "gunicorn", "hypercorn", "daphne", "granian", "waitress")
_RUNNERS = frozenset(
    {"asyncio.events", "asyncio.runners", "threading", "concurrent.futures.thread", "uvloop"}
)

_config = Config()
# Tests set this so an internal error fails the test instead of being swallowed.
raise_internal_errors = False
# The pytest plugin's observer of every checked call (family, sink, argument), or None.
flow_observer: Callable[[RequestContext, str, Sink, object], None] | None = None
_logged_places: set[str] = set()


def configure(config: Config) -> None:
    global _config
    _config = config


def active_config() -> Config:
    return _config


@dataclass(frozen=True, slots=True)
class Incident:
    """One detected attack, as logged, counted and shown in the 403 answer."""

    id: str
    kind: AttackKind
    reason: str
    sink: str
    dialect: str | None
    input_source: str
    input_value: str
    statement: str
    code_file: str | None
    code_line: int | None
    code_function: str | None
    mode: str
    action: str
    method: str
    path: str
    route: str | None
    timestamp: float

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["kind"] = self.kind.value
        return {"event": "rasp.attack", **record}


class AttackBlocked(BaseException):
    """Raised in place of a sink call that an injection reached, in ``block`` mode.

    It derives from ``BaseException`` so that an app's ``except Exception`` does not turn a
    block into a normal-looking answer; the middleware answers 403 in any case.
    """

    def __init__(self, incident: Incident) -> None:
        super().__init__(f"{incident.kind.value} blocked in {incident.sink} ({incident.id})")
        self.incident = incident


@dataclass(frozen=True, slots=True)
class Sink:
    """A guarded call site family, as reported: ``sqlite3``, ``psycopg``, ..."""

    name: str
    dialect: Dialect | None
    """The SQL dialect of a database sink; None for the other families."""
    skip_modules: tuple[str, ...]
    """Modules of the driver, skipped with the agent's own when finding the app's code."""
    render: Callable[[object, object], str | None] | None = None
    """For queries that are not text (psycopg's ``sql.Composed``): ``render(query, owner)``
    gives the text the driver will send, with ``owner`` the cursor or connection called."""


def check_sql(context: RequestContext, query: object, sink: Sink, owner: object = None) -> None:
    """Check a statement about to run in ``context``; raise :class:`AttackBlocked` to stop it.

    Sinks call this only inside a request (``current()`` is not None), so the cost outside
    requests stays one context-variable lookup. This is the hot path: it stays flat.
    """
    if context.suppressed or context.finished or _config.mode is Mode.OFF:
        return
    incident = None
    started = perf_counter_ns()
    try:
        if type(query) is str:
            text: str | None = query
        elif sink.render is None or isinstance(query, (str, bytes, bytearray, memoryview)):
            text = _text(query)
        else:
            text = sink.render(query, owner)
        if flow_observer is not None and text:
            contained("flow", flow_observer, context, "sql", sink, text)
        if text:
            candidates = context.matcher(sql_detector.candidate_needles).candidates(text)
            if candidates:
                statement = sql_detector.Statement(text, sink.dialect or Dialect.GENERIC)
                for user_input in candidates:
                    finding = statement.judge(user_input.value)
                    if finding is not None:
                        incident = _report_sql(context, statement, finding, user_input, sink)
                        break
    except Exception:
        _internal_error("check_sql")
        if _config.fail_closed:
            incident = _failure_incident(context, sink)
    context.tally(sink.name, _SQL, started)
    _raise_if_blocked(context, incident)


def check_command(context: RequestContext, command: object, sink: Sink) -> bool:
    """Check a process about to start: ``command`` is a shell string (``shell=True``,
    ``os.system``) or an argument list. Raise :class:`AttackBlocked` to stop it; return
    whether an attack was reported (and the call may run: monitor mode)."""
    if context.suppressed or context.finished or _config.mode is Mode.OFF:
        return False
    incident = None
    started = perf_counter_ns()
    try:
        if flow_observer is not None:
            contained("flow", flow_observer, context, "shell", sink, command)
        matcher = context.matcher(shell_detector.needles)
        parts = None if matcher.empty else _command_parts(command)
        if parts:
            # Searched with the arguments joined by NUL, which no argument can hold: the
            # input is found as the program receives it, quotes and all.
            found = _first_finding(
                matcher.candidates("\0".join(parts)),
                lambda value: shell_detector.detect(command, value),  # type: ignore[arg-type]
            )
            if found is not None:
                text = parts[0] if isinstance(command, _TEXT) else shlex.join(parts)
                incident = _report(context, found[0], sink, found[1].label, found[1].value, text)
    except Exception:
        _internal_error("check_command")
        if _config.fail_closed:
            incident = _failure_incident(context, sink, AttackKind.SHELL_INJECTION)
    context.tally(sink.name, _SHELL, started)
    _raise_if_blocked(context, incident)
    return incident is not None


def check_path(context: RequestContext, path: object, sink: Sink) -> bool:
    """Check a file-system call about to run on ``path`` (str, bytes, PathLike; a file
    descriptor is not a path). Raise :class:`AttackBlocked` to stop it; return whether an
    attack was reported. Hot: ``open()`` and ``os.stat()`` run this in every request."""
    if context.suppressed or context.finished or _config.mode is Mode.OFF:
        return False
    incident = None
    started = 0
    try:
        if flow_observer is not None:
            contained("flow", flow_observer, context, "path", sink, path)
        matcher = context.matcher(path_detector.candidate_needles)
        if matcher.empty:
            # No input of this request could ever be a traversal (most requests): counted,
            # not timed, as timing would cost what the check costs.
            context.count(sink.name)
            return False
        started = perf_counter_ns()
        text = path if type(path) is str else _path_text(path)
        if text:
            found = _first_finding(
                matcher.candidates(text), lambda value: path_detector.detect(text, value)
            )
            if found is not None:
                label, value = found[1].label, found[1].value
                incident = _report(context, found[0], sink, label, value, text)
    except Exception:
        _internal_error("check_path")
        if _config.fail_closed:
            incident = _failure_incident(context, sink, AttackKind.PATH_TRAVERSAL)
    if started:
        context.tally(sink.name, _PATH, started)
    else:
        context.count(sink.name)
    _raise_if_blocked(context, incident)
    return incident is not None


def check_address(context: RequestContext, host: object, addresses: list[str], sink: Sink) -> None:
    """Check a host name the app resolved (or an address it connects to) against the
    addresses it resolved to; raise :class:`AttackBlocked` before the client connects."""
    if context.suppressed or context.finished or _config.mode is Mode.OFF:
        return
    incident = None
    started = perf_counter_ns()
    try:
        name = _host_text(host)
        if flow_observer is not None and name:
            contained("flow", flow_observer, context, "url", sink, name)
        if name:
            incident = _judge_address(context, name, addresses, sink)
    except Exception:
        _internal_error("check_address")
        if _config.fail_closed:
            incident = _failure_incident(context, sink, AttackKind.SSRF)
    context.tally(sink.name, _SSRF, started)
    _raise_if_blocked(context, incident)


def note_redirect(context: RequestContext, from_url: object, to_url: object) -> None:
    """An HTTP client is about to follow a redirect. When the server that answered was
    chosen by user input, so is the redirect's target: it becomes a derived input."""
    if context.suppressed or context.finished or _config.mode is Mode.OFF:
        return
    try:
        origin = str(from_url)
        source = ssrf_detector.parse_host(origin)
        # An input the app put in the path or query of the URL it asked for did not choose
        # the server (see _judge_address).
        path = outbound.requested_path(source, (origin,)) if source else None
        index = context.derive(outbound.HostIndex)
        if source and any(
            ssrf_detector.contributes(source, user_input.value)
            and not outbound.placed_by_app(user_input, index.inputs, path)
            for user_input in index.candidates(source)
        ):
            context.derived.append(UserInput("redirect", "location", str(to_url)))
    except Exception:
        _internal_error("note_redirect")


def _judge_address(
    context: RequestContext, host: str, addresses: list[str], sink: Sink
) -> Incident | None:
    allowed = _allowlist()
    statement = f"{host} -> {', '.join(addresses)}" if addresses else host
    path: str | None = None
    looked = False
    index = context.derive(outbound.HostIndex)
    for user_input in index.candidates(host):
        if ssrf_detector.contributes(host, user_input.value):
            if not looked:  # only now: most checks never get here
                looked, path = True, outbound.requested_path(host, outbound.REQUESTED.get())
            if outbound.placed_by_app(user_input, index.inputs, path):
                # The app asked its client for a URL to this host with the input in the
                # path or query: the input did not make the host, the app's text did.
                continue
            finding = ssrf_detector.detect(host, user_input.value, resolved_ips=addresses)
            if finding is not None and not allowed.permits(host, addresses):
                label, value = user_input.label, user_input.value
                return _report(context, finding, sink, label, value, statement)
    if outbound.maybe_metadata(host, addresses) and ssrf_detector.is_metadata(host, addresses):
        if allowed.permits(host, addresses):
            return None
        if not outbound.called_by(outbound.CREDENTIAL_PROVIDERS):
            finding = Finding(AttackKind.SSRF, outbound.METADATA_REASON, 0, len(host), host)
            return _report(context, finding, sink, "", "", statement)
    return None


_redactor_memo = Redactor((), ())


def _redactor() -> Redactor:
    global _redactor_memo
    if _redactor_memo.source != (_config.redact_keys, _config.redact_values):
        _redactor_memo = Redactor(_config.redact_keys, _config.redact_values)
    return _redactor_memo


_allowlist_memo = outbound.Allowlist(())


def _allowlist() -> outbound.Allowlist:
    global _allowlist_memo
    if _allowlist_memo.source != _config.ssrf_allow:
        _allowlist_memo = outbound.Allowlist(_config.ssrf_allow)
    return _allowlist_memo


def _first_finding(
    candidates: list[UserInput], judge: Callable[[str], Finding | None]
) -> tuple[Finding, UserInput] | None:
    """The first candidate input the detector judges an attack, with its finding."""
    for user_input in candidates:
        finding = judge(user_input.value)
        if finding is not None:
            return finding, user_input
    return None


def _raise_if_blocked(context: RequestContext, incident: Incident | None) -> None:
    if incident is not None and incident.action == "blocked":
        context.blocked = incident
        raise AttackBlocked(incident)


_TEXT = (str, bytes, bytearray, os.PathLike)


def _command_parts(command: object) -> list[str] | None:
    """A shell line as one part, or the text of each argument of an argument list."""
    if isinstance(command, _TEXT):
        text = _path_text(command)
        return [text] if text else None
    if isinstance(command, (list, tuple)):
        return [text for text in map(_path_text, command) if text is not None]
    return None


def _path_text(path: object) -> str | None:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if isinstance(path, str):
        return path
    if isinstance(path, (bytes, bytearray)):
        return bytes(path).decode("utf-8", "surrogateescape")
    return None  # a file descriptor, or a type the library will reject itself


def _host_text(host: object) -> str | None:
    if isinstance(host, str):
        return host
    if isinstance(host, (bytes, bytearray)):
        return bytes(host).decode("ascii", "replace")
    return None


def _text(query: object) -> str | None:
    if isinstance(query, str):
        return query
    if isinstance(query, (bytes, bytearray, memoryview)):
        return bytes(query).decode("utf-8", "surrogateescape")
    return None  # psycopg's Composed and the like are rendered by their sink


def _report_sql(
    context: RequestContext,
    statement: sql_detector.Statement,
    finding: Finding,
    user_input: UserInput,
    sink: Sink,
) -> Incident:
    # Literals are masked with the evidence (in _evidence), where a failure cannot stop
    # the block.
    return _report(context, finding, sink, user_input.label, user_input.value, statement.text)


def _report(
    context: RequestContext,
    finding: Finding,
    sink: Sink,
    source: str,
    value: str,
    statement: str,
) -> Incident:
    """The incident of an attack found, reported. The decision stands whatever happens to
    the evidence: a part that cannot be built is left out (and counted), never the block."""
    mode = _config.mode
    evidence = contained("evidence", _evidence, context, sink, source, value, statement)
    if evidence is None:
        evidence = _Evidence(_UNAVAILABLE, _UNAVAILABLE, _UNAVAILABLE, None, None, None, None)
    incident = Incident(
        id=uuid.uuid4().hex[:20],
        kind=finding.kind,
        reason=finding.reason,
        sink=sink.name,
        dialect=sink.dialect.value if sink.dialect is not None else None,
        input_source=source,
        input_value=evidence.input_value,
        statement=evidence.statement,
        code_file=evidence.code_file,
        code_line=evidence.code_line,
        code_function=evidence.code_function,
        mode=mode.value,
        action="blocked" if mode is Mode.BLOCK else "monitored",
        method=context.method,
        path=evidence.path,
        route=evidence.route,
        timestamp=time.time(),
    )
    context.incidents.append(incident)
    emit(incident)
    return incident


class _Evidence(NamedTuple):
    input_value: str
    statement: str
    path: str
    route: str | None
    code_file: str | None
    code_line: int | None
    code_function: str | None


_UNAVAILABLE = "[unavailable]"


def _evidence(
    context: RequestContext, sink: Sink, source: str, value: str, statement: str
) -> _Evidence:
    redactor = _redactor()
    if sink.dialect is not None:
        # SQL: every string and number literal masked; a little more than is shown is
        # lexed, so a literal cut at the limit is still seen as one.
        statement = sql_detector.redact(statement[: MAX_STATEMENT_CHARS * 2], sink.dialect)
    secrets = [
        user_input.value
        for user_input in context.inputs()
        if len(user_input.value) >= 4 and redactor.secret_key(user_input.label)
    ]
    return _Evidence(
        redactor.input(source, _truncate(value, MAX_INPUT_CHARS)),
        redactor.text(_truncate(redactor.values(statement, secrets), MAX_STATEMENT_CHARS)),
        redactor.text(_truncate(redactor.values(context.path, secrets), MAX_INPUT_CHARS)),
        context.route or route_template(context),
        *_app_frame(sink.skip_modules),
    )


def _failure_incident(
    context: RequestContext, sink: Sink, kind: AttackKind = AttackKind.SQL_INJECTION
) -> Incident | None:
    """In fail-closed mode, a check that could not finish blocks the call."""
    try:
        finding = Finding(kind, "agent failed during the check", 0, 0, "")
        return _report(context, finding, sink, "", "", "")
    except Exception:
        _internal_error("fail_closed")
        return None


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _app_frame(skip_modules: tuple[str, ...]) -> tuple[str | None, int | None, str | None]:
    """File, line and function of the first frame outside the agent, the data layers and
    the driver."""
    packages = skip_modules + _DATA_LAYERS + _SERVERS
    nested = tuple(package + "." for package in packages)
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module in _RUNNERS:
            return None, None, None  # a loop or thread runs this: no app frame above
        if not (
            frame.f_code.co_filename.startswith(_AGENT_DIR)
            or module in packages
            or module.startswith(nested)
        ):
            return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name
        frame = frame.f_back
    return None, None, None


def _internal_error(place: str) -> None:
    if raise_internal_errors:
        raise
    try:
        metrics.internal_error(place)
        if place not in _logged_places:
            _logged_places.add(place)
            _log.exception("rasp: internal error in %s; the call went on unchecked", place)
    except Exception:  # never let reporting an error become an error
        pass


def contained(place: str, function: Callable[..., Any], *args: Any) -> Any:
    """Run agent code that must never break the host: errors are counted, None returned."""
    try:
        return function(*args)
    except Exception:
        _internal_error(place)
        return None
