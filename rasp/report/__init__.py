"""Telemetry: every detected attack leaves the agent through :func:`emit`: counted in
Prometheus, alerted through :mod:`rasp.report.alerts` (one per distinct attack per window),
and added as an event to the current OpenTelemetry span."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rasp.detectors import AttackKind
from rasp.report import alerts, metrics
from rasp.report.alerts import ALERT_LOGGER, JsonFormatter

if TYPE_CHECKING:
    from rasp.guard import Incident

__all__ = ["ALERT_LOGGER", "JsonFormatter", "emit"]


listeners: list[Callable[[Incident], None]] = []
"""Called with every incident after the agent's own reporting (the pytest plugin)."""


def emit(incident: Incident) -> None:
    """Count, alert and trace ``incident``. Each part fails on its own: a broken log
    handler or exporter never stops a block or the other parts."""
    parts: list[tuple[str, Callable[[Incident], None]]] = [
        ("metrics", _count), ("alerts", alerts.handle), ("otel", _span_event),
    ]  # fmt: skip
    parts += [("listener", listener) for listener in listeners]
    for place, part in parts:
        try:
            part(incident)
        except Exception:
            from rasp.guard import _internal_error

            _internal_error(f"report_{place}")


def _count(incident: Incident) -> None:
    metrics.attack(incident.kind.value, incident.sink, incident.action, incident.route)


def _span_event(incident: Incident) -> None:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry-api is a dependency
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: dict[str, str | int | None] = {
        # OpenTelemetry semantic conventions where they exist (security_rule.*, code.*,
        # http.*, db.*, process.*, file.*, server.*, exception.*), rasp.* for the rest.
        "security_rule.category": incident.kind.value,
        "security_rule.name": incident.reason,
        "security_rule.ruleset.name": "rasp",
        "rasp.incident.id": incident.id,
        "rasp.action": incident.action,
        "rasp.sink": incident.sink,
        "rasp.input.source": incident.input_source,
        "rasp.input.value": incident.input_value,
        "code.file.path": incident.code_file,
        "code.line.number": incident.code_line,
        "code.function.name": incident.code_function,
        "http.request.method": incident.method,
        "http.route": incident.route,
    }
    # The sink's argument, under the semantic-convention name of its kind.
    if incident.dialect:
        attributes["db.system"] = incident.dialect  # db.system.name from semconv 1.32
        attributes["db.system.name"] = incident.dialect
        attributes["db.query.text"] = incident.statement  # literals already replaced by ?
    elif incident.kind is AttackKind.SHELL_INJECTION:
        attributes["process.command_line"] = incident.statement
    elif incident.kind is AttackKind.PATH_TRAVERSAL:
        attributes["file.path"] = incident.statement
    elif incident.kind is AttackKind.SSRF:
        attributes["server.address"] = incident.statement.split(" -> ", 1)[0]
    if incident.action == "blocked":
        attributes["exception.type"] = "rasp.AttackBlocked"
        attributes["exception.message"] = f"{incident.kind.value} blocked in {incident.sink}"
    span.add_event("rasp.attack", {k: v for k, v in attributes.items() if v is not None})
    if incident.action == "blocked":
        span.set_status(trace.Status(trace.StatusCode.ERROR, f"rasp blocked {incident.kind.value}"))
