"""Telemetry: every detected attack leaves the agent through :func:`emit`."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from rasp.detectors import AttackKind
from rasp.report import metrics

if TYPE_CHECKING:
    from rasp.guard import Incident

__all__ = ["ALERT_LOGGER", "emit"]

ALERT_LOGGER = "rasp.alerts"
_alerts = logging.getLogger(ALERT_LOGGER)


def emit(incident: Incident) -> None:
    """Log one JSON line, count it, and add an event to the current OpenTelemetry span."""
    metrics.attack(incident.kind.value, incident.sink, incident.action, incident.route)
    _alerts.warning(json.dumps(incident.as_dict(), ensure_ascii=False, separators=(",", ":")))
    _span_event(incident)


def _span_event(incident: Incident) -> None:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry-api is a dependency
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes = {
        "security_rule.category": incident.kind.value,
        "security_rule.name": incident.reason,
        "rasp.incident.id": incident.id,
        "rasp.action": incident.action,
        "rasp.sink": incident.sink,
        "rasp.input.source": incident.input_source,
        "code.filepath": incident.code_file,
        "code.lineno": incident.code_line,
        "code.function": incident.code_function,
    }
    # The sink's argument, under the semantic-convention name of its kind.
    if incident.dialect:
        attributes["db.system"] = incident.dialect
        attributes["db.query.text"] = incident.statement
    elif incident.kind is AttackKind.SHELL_INJECTION:
        attributes["process.command_line"] = incident.statement
    elif incident.kind is AttackKind.PATH_TRAVERSAL:
        attributes["file.path"] = incident.statement
    elif incident.kind is AttackKind.SSRF:
        attributes["server.address"] = incident.statement.split(" -> ", 1)[0]
    span.add_event("rasp.attack", {k: v for k, v in attributes.items() if v is not None})
    if incident.action == "blocked":
        span.set_status(trace.Status(trace.StatusCode.ERROR, f"rasp blocked {incident.kind.value}"))
