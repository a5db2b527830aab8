"""Prometheus metrics of the agent, on prometheus_client's default registry.

Labels hold kinds, sink names, actions and places in the agent: small fixed sets, never
request data.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["attack", "inputs_skipped", "internal_error", "request_blocked"]

ATTACKS = Counter(
    "rasp_attacks",
    "Injections detected, by attack kind, sink and the action taken.",
    ["kind", "sink", "action"],
)
REQUESTS_BLOCKED = Counter(
    "rasp_requests_blocked",
    "Requests answered with 403 because an injection was blocked.",
)
INPUTS_SKIPPED = Counter(
    "rasp_inputs_skipped",
    "User inputs (or request bodies) not scanned, by reason.",
    ["reason"],
)
INTERNAL_ERRORS = Counter(
    "rasp_internal_errors",
    "Errors inside the agent, caught so the application went on, by place.",
    ["place"],
)


def attack(kind: str, sink: str, action: str) -> None:
    ATTACKS.labels(kind=kind, sink=sink, action=action).inc()


def request_blocked() -> None:
    REQUESTS_BLOCKED.inc()


def inputs_skipped(reason: str, count: int = 1) -> None:
    INPUTS_SKIPPED.labels(reason=reason).inc(count)


def internal_error(place: str) -> None:
    INTERNAL_ERRORS.labels(place=place).inc()
