"""Prometheus metrics of the agent, on prometheus_client's default registry.

Labels hold kinds, sink names, actions, places in the agent and route templates: small
fixed sets, never request data (a route is the framework's template, ``/items/{id}``, and
a request no route matched is ``unknown``).

The metrics are created on first use, not when ``rasp`` is imported: prometheus_client
chooses between in-process and multiprocess values (``PROMETHEUS_MULTIPROC_DIR``, see
:mod:`rasp.gunicorn`) when it is first imported, which must come after a gunicorn config
has set that variable.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CHECK_DURATION_BUCKETS",
    "UNKNOWN_ROUTE",
    "agent_info",
    "alert",
    "alert_suppressed",
    "attack",
    "ensure",
    "inputs_skipped",
    "internal_error",
    "mirror_to_otel",
    "multiprocess",
    "request_blocked",
    "request_finished",
]

UNKNOWN_ROUTE = "unknown"
# From 1 µs to 50 ms: a check costs microseconds; the top buckets catch the pathological.
CHECK_DURATION_BUCKETS = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01,
    0.025, 0.05,
)  # fmt: skip


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.attacks = Counter(
            "rasp_attacks",
            "Injections detected, by attack kind, sink, action taken and route template.",
            ["kind", "sink", "action", "route"],
        )
        self.requests = Counter(
            "rasp_requests",
            "Requests the agent's middleware served (the denominator of the blocked ratio).",
        )
        self.requests_blocked = Counter(
            "rasp_requests_blocked",
            "Requests answered with 403 because an injection was blocked.",
        )
        self.sink_checks = Counter(
            "rasp_sink_checks",
            "Guarded calls checked while a request was served, by sink.",
            ["sink"],
        )
        self.check_duration = Histogram(
            "rasp_check_duration_seconds",
            "Time the agent spent checking the guarded calls of one kind during one request.",
            ["kind"],
            buckets=CHECK_DURATION_BUCKETS,
        )
        self.inputs_skipped = Counter(
            "rasp_inputs_skipped",
            "User inputs (or request bodies) not scanned, by reason.",
            ["reason"],
        )
        self.internal_errors = Counter(
            "rasp_internal_errors",
            "Errors inside the agent, caught so the application went on, by place.",
            ["place"],
        )
        self.alerts = Counter(
            "rasp_alerts",
            "Alert log records written: the first of each distinct attack in its window "
            "(event attack) and the summaries of its repeats (event repeated).",
            ["kind", "event"],
        )
        self.alerts_suppressed = Counter(
            "rasp_alerts_suppressed",
            "Repeats of an attack already alerted in its window, counted into a summary "
            "instead of logged.",
            ["kind"],
        )
        self.children: dict[object, Any] = {}
        """Labelled children of sink_checks (by sink) and check_duration (by kind)."""
        # An info metric as a gauge: prometheus_client's Info has no multiprocess mode.
        self.info = Gauge(
            "rasp_agent_info",
            "The agent's version, mode and guarded sink families (value 1).",
            ["version", "mode", "sinks"],
            multiprocess_mode="livemax",
        )


class _OtelMirror:
    """The same measurements through the OpenTelemetry metrics API (``otel_metrics``), for
    pipelines that speak OTLP: the app's MeterProvider exports them."""

    def __init__(self) -> None:
        from opentelemetry import metrics as otel

        from rasp import __version__

        meter = otel.get_meter("rasp", __version__)
        self.attacks = meter.create_counter(
            "rasp.attacks", unit="{attack}", description="Injections detected."
        )
        self.requests = meter.create_counter(
            "rasp.requests", unit="{request}", description="Requests the agent served."
        )
        self.requests_blocked = meter.create_counter(
            "rasp.requests.blocked", unit="{request}", description="Requests answered 403."
        )
        self.internal_errors = meter.create_counter(
            "rasp.internal_errors", unit="{error}", description="Errors inside the agent."
        )
        self.check_duration = meter.create_histogram(
            "rasp.check.duration",
            unit="s",
            description="Time in the agent's checks of one kind during one request.",
            # The SDK's default buckets start at 5 s: every check would land in the first.
            explicit_bucket_boundaries_advisory=CHECK_DURATION_BUCKETS,
        )


_metrics: _Metrics | None = None
_otel: _OtelMirror | None = None
_lock = threading.Lock()


def mirror_to_otel(enabled: bool) -> None:
    """Start (or stop) mirroring the measurements through the OpenTelemetry metrics API."""
    global _otel
    if not enabled:
        _otel = None
    elif _otel is None:
        _otel = _OtelMirror()


def _get() -> _Metrics:
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _Metrics()
                if _pending_info is not None:
                    _set_info(_metrics, _pending_info)
    return _metrics


def ensure() -> None:
    """Create the metrics now (they are created on first use otherwise)."""
    _get()


def attack(kind: str, sink: str, action: str, route: str | None) -> None:
    route = route or UNKNOWN_ROUTE
    _get().attacks.labels(kind=kind, sink=sink, action=action, route=route).inc()
    if _otel is not None:
        attributes = {"kind": kind, "sink": sink, "action": action, "route": route}
        _otel.attacks.add(1, attributes)


def request_blocked() -> None:
    _get().requests_blocked.inc()
    if _otel is not None:
        _otel.requests_blocked.add(1)


def request_finished(checks: Mapping[str, int], check_ns: Mapping[str, int]) -> None:
    """One request served: its checks by sink, and its time in checks by kind."""
    metrics = _get()
    metrics.requests.inc()
    # Once per request: the labelled children are kept (a labels() call costs about 1 µs;
    # sinks and kinds are small fixed sets).
    children = metrics.children
    for sink, count in checks.items():
        child = children.get(sink)
        if child is None:
            child = children[sink] = metrics.sink_checks.labels(sink=sink)
        child.inc(count)
    for kind, nanoseconds in check_ns.items():
        timer = children.get(("duration", kind))
        if timer is None:
            timer = children[("duration", kind)] = metrics.check_duration.labels(kind=kind)
        timer.observe(nanoseconds / 1e9)
    if _otel is not None:
        _otel.requests.add(1)
        for kind, nanoseconds in check_ns.items():
            _otel.check_duration.record(nanoseconds / 1e9, {"kind": kind})


def inputs_skipped(reason: str, count: int = 1) -> None:
    _get().inputs_skipped.labels(reason=reason).inc(count)


def internal_error(place: str) -> None:
    _get().internal_errors.labels(place=place).inc()
    if _otel is not None:
        _otel.internal_errors.add(1, {"place": place})


def alert(kind: str, event: str) -> None:
    _get().alerts.labels(kind=kind, event=event).inc()


def alert_suppressed(kind: str) -> None:
    _get().alerts_suppressed.labels(kind=kind).inc()


_info_labels: tuple[str, str, str] | None = None
_pending_info: tuple[str, str, str] | None = None


def agent_info(version: str, mode: str, sinks: str) -> None:
    """Set the info series to 1 (an earlier one, another mode, goes to 0 and is removed),
    now if the metrics exist, else when they are first used: ``rasp.protect()`` must not
    import prometheus_client in a gunicorn master before :mod:`rasp.gunicorn` has chosen
    multiprocess mode."""
    global _pending_info
    _pending_info = (version, mode, sinks)
    if _metrics is not None:
        _set_info(_metrics, _pending_info)


def _set_info(metrics: _Metrics, labels: tuple[str, str, str]) -> None:
    global _info_labels
    gauge = metrics.info
    if _info_labels is not None and _info_labels != labels:
        gauge.labels(*_info_labels).set(0)  # a multiprocess file keeps it: make it 0 there
        if not multiprocess():  # where prometheus_client cannot remove a series
            gauge.remove(*_info_labels)
    gauge.labels(*labels).set(1)
    _info_labels = labels


def registry_names() -> list[str]:
    """The metric family names, as the exposition shows them (for tests and docs)."""
    metrics = _get()
    names: list[str] = []
    for metric in vars(metrics).values():
        if not hasattr(metric, "describe"):
            continue  # the kept children
        described: Any = metric.describe()
        names.extend(family.name for family in described)
    return names


def multiprocess() -> bool:
    """Is prometheus_client in multiprocess mode (its directory set in the environment)?"""
    import os

    return bool(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")
    )
