"""Alerts: one log record per distinct attack per window, then a summary of its repeats.

An attack's signature is what an operator acts on: its kind, the sink, the route, the app's
code site, the input's source key and the action. The first time a signature is seen in a
window (``alert_window`` seconds, 60 by default) its alert is logged in full; repeats within
the window are counted (``rasp_alerts_suppressed_total``) and, when the window ends, one
record says how many there were: "the same attack was blocked 37 more times in the last
60 s". Signatures are remembered in a bounded LRU (``alert_signatures``); one forgotten with
repeats pending has its summary written first. A daemon thread writes summaries when their
window ends, whether or not more attacks come; the rest are written at exit.

Records go to the ``rasp.alerts`` logger, with the event's fields in ``record.rasp``. When
the app's logging has no handler for that logger, the agent writes them to stderr itself
(JSON lines, or text); :class:`JsonFormatter` renders them for the app's own handlers.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rasp.report import metrics

if TYPE_CHECKING:
    from rasp.guard import Incident

__all__ = ["ALERT_LOGGER", "JsonFormatter", "configure", "flush", "handle", "reset", "tick"]

ALERT_LOGGER = "rasp.alerts"
_alerts = logging.getLogger(ALERT_LOGGER)

Signature = tuple[str, ...]


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the
    agent's event fields (``record.rasp``) at the top level. Works for any record."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "rasp", None)
        if isinstance(fields, dict):
            document.update(fields)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(slots=True)
class _Window:
    """A signature's current window: what its summary says, not the incidents themselves
    (a few hundred bytes, whatever the statements were)."""

    started: float
    kind: str
    sink: str
    action: str
    route: str | None
    path: str
    code_file: str | None
    code_line: int | None
    input_source: str
    first_id: str
    last_id: str
    last_input_value: str
    repeats: int = 0

    @classmethod
    def opened(cls, now: float, incident: Incident) -> _Window:
        return cls(
            now, incident.kind.value, incident.sink, incident.action, incident.route,
            incident.path, incident.code_file, incident.code_line, incident.input_source,
            incident.id, incident.id, incident.input_value,
        )  # fmt: skip


# Distinct input keys an attack at one code site may have before further keys share one
# signature: the keys are the attacker's to choose (?junk1=...&junk2=...), the code site
# is not.
MAX_KEYS_PER_SITE = 8


class _Limiter:
    """The signatures seen and their current windows. Thread-safe; fork-safe."""

    def __init__(self) -> None:
        self.window = 60.0
        self.capacity = 10_000
        self._lock = threading.Lock()
        self._windows: OrderedDict[Signature, _Window] = OrderedDict()
        self._site_keys: OrderedDict[tuple[str, ...], set[str]] = OrderedDict()
        self._thread: threading.Thread | None = None
        self.next_due = float("inf")
        """When the first pending summary is due (read without the lock: a hint)."""

    def signature(self, incident: Incident) -> Signature:
        site = (
            incident.kind.value, incident.sink, incident.route or "", incident.code_file or "",
            str(incident.code_line or 0), incident.action,
        )  # fmt: skip
        source = incident.input_source
        with self._lock:
            keys = self._site_keys.get(site)
            if keys is None:
                keys = self._site_keys[site] = set()
                while len(self._site_keys) > self.capacity:
                    self._site_keys.popitem(last=False)
            if source not in keys:
                if len(keys) >= MAX_KEYS_PER_SITE:
                    source = source.partition(".")[0] + ".*"  # the source kind, any key
                else:
                    keys.add(source)
        return (*site, source)

    def admit(
        self, signature: Signature, incident: Incident, now: float
    ) -> tuple[bool, list[_Window]]:
        """Whether ``incident`` opens a new window (log it in full) or repeats one (count
        it), and the windows whose summaries are due meanwhile."""
        due: list[_Window] = []
        starting = None
        with self._lock:
            window = self._windows.get(signature)
            repeat = window is not None and now - window.started < self.window
            if window is not None and repeat:
                if not window.repeats:
                    self.next_due = min(self.next_due, window.started + self.window)
                window.repeats += 1
                window.last_id = incident.id
                window.last_input_value = incident.input_value
                self._windows.move_to_end(signature)
                starting = self._new_flusher()
            else:
                if window is not None and window.repeats:
                    due.append(window)
                opened = self._windows[signature] = _Window.opened(now, incident)
                opened.input_source = signature[-1]  # query.* when the keys were folded
                self._windows.move_to_end(signature)
                while len(self._windows) > self.capacity:
                    _, forgotten = self._windows.popitem(last=False)
                    if forgotten.repeats:
                        due.append(forgotten)
        if starting is not None:
            # Started outside the lock: under gevent, starting a thread switches greenlets,
            # and another one taking this (real, pre-patch) lock meanwhile would block the
            # whole process.
            starting.start()
        return not repeat, due

    def expired(self, now: float, everything: bool = False) -> list[_Window]:
        """Snapshots of the windows with repeats that ended (or of all with repeats); their
        count starts again from 0, and the next attack after the end opens a new window."""
        due: list[_Window] = []
        with self._lock:
            next_due = float("inf")
            for window in self._windows.values():
                if window.repeats and (everything or now - window.started >= self.window):
                    due.append(dataclasses.replace(window))
                    window.repeats = 0
                elif window.repeats:
                    next_due = min(next_due, window.started + self.window)
            self.next_due = next_due
        return due

    def retire_flusher(self, thread: threading.Thread) -> bool:
        """Called by the summaries thread: whether it may stop (nothing pending, or it is
        not this limiter's thread any more: a reset). Decided under the lock a repeat takes
        to start a thread, so none is left without one."""
        with self._lock:
            if self._thread is not thread:
                return True
            if any(window.repeats for window in self._windows.values()):
                return False
            self._thread = None
            return True

    def _new_flusher(self) -> threading.Thread | None:
        """Under the lock: the summaries thread to start, unless one runs (a thread of a
        parent process does not exist in a forked child)."""
        thread = self._thread
        if thread is not None and (thread.is_alive() or thread.ident is None):
            return None  # running, or about to be started by the call that made it
        if _green():
            return None  # under gevent, requests' ends write the summaries (see tick)
        self._thread = threading.Thread(
            target=_flush_loop, name="rasp-alert-summaries", daemon=True
        )
        return self._thread

    def reset_after_fork(self) -> None:
        self.next_due = float("inf")
        self._lock = threading.Lock()
        self._windows = OrderedDict()
        self._site_keys = OrderedDict()
        self._thread = None


_limiter = _Limiter()
_format = "json"
_stderr_handler: logging.Handler | None = None


def configure(window: float, capacity: int, alert_format: str) -> None:
    """Apply the alert settings (``rasp.protect`` calls this)."""
    global _format
    _limiter.window = window
    _limiter.capacity = capacity
    _format = alert_format
    _ensure_fallback_handler()


def handle(incident: Incident) -> None:
    """Log ``incident``, or count it into its signature's summary."""
    if _limiter.window <= 0:
        _log_attack(incident)
        return
    opens, due = _limiter.admit(_limiter.signature(incident), incident, time.monotonic())
    now = time.monotonic()
    for window in due:
        _log_summary(window, now)
    if opens:
        _log_attack(incident)
    else:
        metrics.alert_suppressed(incident.kind.value)


def reset() -> None:
    """Forget every signature and pending summary (for tests)."""
    _limiter.reset_after_fork()


def flush(everything: bool = False) -> None:
    """Write the summaries whose window ended (all pending ones when ``everything``)."""
    now = time.monotonic()
    for window in _limiter.expired(now, everything):
        _log_summary(window, now)


def tick() -> None:
    """A request ended: write the summaries that are due. Cheap when none is (one clock
    read); where no summaries thread runs (gevent), this is what writes them."""
    if time.monotonic() >= _limiter.next_due:
        flush()


def _green() -> bool:
    """Is this process's threading patched by gevent? Its greenlets and this module's lock,
    a real one made before the patching, do not mix in a background thread."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is None:
        return False
    try:
        return bool(gevent_monkey.is_module_patched("threading"))
    except Exception:
        return True


def _flush_loop() -> None:
    me = threading.current_thread()
    while True:
        time.sleep(min(1.0, max(_limiter.window, 0.05) / 4))
        try:
            if _limiter.retire_flusher(me):
                return  # nothing pending (started again by the next repeat), or reset
            flush()
        except Exception:  # never let the summaries thread die loudly in the host
            from rasp.guard import _internal_error

            try:
                _internal_error("alert_summaries")
            except Exception:
                return


def _log_attack(incident: Incident) -> None:
    fields = incident.as_dict()
    fields.update(_trace_ids())
    where = f"{incident.code_file}:{incident.code_line}" if incident.code_file else "unknown code"
    message = (
        f"rasp: {incident.action} {incident.kind.value} ({incident.reason}) in "
        f"{incident.sink} at {where}, input {incident.input_source or '-'}, "
        f"{incident.method} {incident.route or incident.path} [{incident.id}]"
    )
    _alerts.warning(message, extra={"rasp": fields})
    metrics.alert(incident.kind.value, "attack")


def _log_summary(window: _Window, now: float) -> None:
    seconds = max(1, round(now - window.started))
    verb = "blocked" if window.action == "blocked" else "seen (monitor mode)"
    times = "time" if window.repeats == 1 else "times"
    where = f"{window.code_file}:{window.code_line}" if window.code_file else "unknown code"
    message = (
        f"rasp: the same {window.kind} was {verb} {window.repeats} more {times} in the "
        f"last {seconds} s ({window.sink} at {where}, input {window.input_source or '-'}, "
        f"{window.route or window.path}) [first {window.first_id}, last {window.last_id}]"
    )
    fields = {
        "event": "rasp.attack.repeated",
        "kind": window.kind,
        "sink": window.sink,
        "action": window.action,
        "route": window.route,
        "code_file": window.code_file,
        "code_line": window.code_line,
        "input_source": window.input_source,
        "repeats": window.repeats,
        "window_seconds": seconds,
        "first_id": window.first_id,
        "last_id": window.last_id,
        "last_input_value": window.last_input_value,
    }
    _alerts.warning(message, extra={"rasp": fields})
    metrics.alert(window.kind, "repeated")


def _trace_ids() -> dict[str, str]:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry-api is a dependency
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


class _FallbackHandler(logging.Handler):
    """Writes to stderr only when no other handler would receive the record: the app's
    logging wins as soon as it has one (configured before or after the agent started)."""

    def handle(self, record: logging.LogRecord) -> bool:
        if _app_handles(record):
            return False
        return bool(super().handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr  # the stderr of now: a server or a test may swap it
            stream.write(_FORMATTERS[_format].format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def _app_handles(record: logging.LogRecord) -> bool:
    logger: logging.Logger | None = _alerts
    while logger is not None:
        if any(
            handler is not _stderr_handler and record.levelno >= handler.level
            for handler in logger.handlers
        ):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


_FORMATTERS: dict[str, logging.Formatter] = {
    "json": JsonFormatter(),
    "text": logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"),
}


def _ensure_fallback_handler() -> None:
    global _stderr_handler
    if _stderr_handler is None:
        _stderr_handler = _FallbackHandler()
        _alerts.addHandler(_stderr_handler)


os.register_at_fork(after_in_child=_limiter.reset_after_fork)
atexit.register(lambda: flush(everything=True))
