"""Attacks become OpenTelemetry span events on the request's span (SDK only in tests)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from serving import in_request

import rasp
from rasp.context import UserInput
from rasp.report import metrics

ATTACK = "x' OR '1'='1"


@pytest.fixture
def tracer() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def _run_in_request(mode: rasp.Mode) -> None:
    rasp.protect(rasp.Config(mode=mode))
    db = sqlite3.connect(":memory:")
    try:
        with in_request("GET", "/users", UserInput("query", "name", ATTACK)):
            db.execute("CREATE TABLE users (name TEXT)")
            db.execute(f"SELECT * FROM users WHERE name = '{ATTACK}'")
    finally:
        db.close()
        rasp.unprotect()


@pytest.mark.parametrize("mode", [rasp.Mode.BLOCK, rasp.Mode.MONITOR])
def test_attack_is_an_event_on_the_current_span(
    tracer: tuple[trace.Tracer, InMemorySpanExporter], mode: rasp.Mode
) -> None:
    tracer_, exporter = tracer
    with tracer_.start_as_current_span("GET /users"):
        try:
            _run_in_request(mode)
        except rasp.AttackBlocked:
            assert mode is rasp.Mode.BLOCK
    (span,) = exporter.get_finished_spans()
    (event,) = [e for e in span.events if e.name == "rasp.attack"]
    attributes = dict(event.attributes or {})
    assert attributes["security_rule.category"] == "sql_injection"
    assert attributes["rasp.input.source"] == "query.name"
    assert attributes["db.system"] == "sqlite"
    assert attributes["db.query.text"] == "SELECT * FROM users WHERE name = ? OR ?=?"
    assert attributes["code.file.path"] == __file__
    assert isinstance(attributes["code.line.number"], int)
    assert attributes["code.function.name"] == "_run_in_request"
    assert attributes["http.request.method"] == "GET"
    assert attributes["security_rule.ruleset.name"] == "rasp"
    assert attributes["rasp.action"] == ("blocked" if mode is rasp.Mode.BLOCK else "monitored")
    if mode is rasp.Mode.BLOCK:
        assert span.status.status_code is StatusCode.ERROR
        assert attributes["exception.type"] == "rasp.AttackBlocked"
        assert attributes["exception.message"] == "sql_injection blocked in sqlite3"
    else:
        assert span.status.status_code is not StatusCode.ERROR
        assert "exception.type" not in attributes


def test_metrics_are_mirrored_through_the_otel_metrics_api() -> None:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    # The global provider can be set once per process: this is the one test that does.
    otel_metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    rasp.protect(rasp.Config(otel_metrics=True))
    db = sqlite3.connect(":memory:")
    try:
        with in_request("GET", "/users", UserInput("query", "name", ATTACK)) as context:
            with pytest.raises(rasp.AttackBlocked):
                db.execute(f"SELECT * FROM users WHERE name = '{ATTACK}'")
        metrics.request_finished(context.checks, context.check_ns)  # as the middleware does
    finally:
        db.close()
        rasp.protect(rasp.Config(otel_metrics=False))
        rasp.unprotect()
    data = reader.get_metrics_data()
    assert data is not None
    found = {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        if scope.scope.name == "rasp"
        for metric in scope.metrics
    }
    (point,) = found["rasp.attacks"].data.data_points
    assert point.value == 1
    (timed,) = found["rasp.check.duration"].data.data_points
    # The agent's own microsecond buckets, not the SDK's default ones (from 5 s up).
    assert timed.explicit_bounds[0] == 1e-6
    assert dict(point.attributes) == {
        "kind": "sql_injection", "sink": "sqlite3", "action": "blocked", "route": "unknown",
    }  # fmt: skip
