"""The OpenTelemetry Collector config wires its pipelines to defined components only."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[2] / "integrations" / "otel-collector" / "config.yaml"
KINDS = ("receivers", "processors", "exporters")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _endpoints(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "endpoint" or key == "targets":
                yield from [value] if isinstance(value, str) else value
            else:
                yield from _endpoints(value)
    elif isinstance(node, list):
        for item in node:
            yield from _endpoints(item)


def test_pipelines_use_defined_components(config: dict[str, Any]) -> None:
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for name, pipeline in pipelines.items():
        assert pipeline["receivers"] and pipeline["exporters"], name
        for kind in KINDS:
            components = pipeline.get(kind, [])
            assert set(components) <= set(config[kind]), (name, kind, components)
            used[kind] |= set(components)
        # batch comes last: it must see what memory_limiter let through.
        assert pipeline["processors"][-1] == "batch", name
    for kind in KINDS:
        assert used[kind] == set(config[kind]), f"{kind} defined but unused"
    assert set(config["service"]["extensions"]) <= set(config["extensions"])


def test_expected_wiring(config: dict[str, Any]) -> None:
    receivers = config["receivers"]
    assert receivers["otlp"]["protocols"]["grpc"]["endpoint"] == "127.0.0.1:4317"
    assert receivers["otlp"]["protocols"]["http"]["endpoint"] == "127.0.0.1:4318"
    jobs = receivers["prometheus"]["config"]["scrape_configs"]
    assert [job["metrics_path"] for job in jobs] == ["/metrics"]
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert pipelines["traces"]["exporters"] == ["debug"]
    assert set(pipelines["metrics"]["receivers"]) == {"otlp", "prometheus"}
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    assert config["exporters"]["prometheus"]["endpoint"].startswith("127.0.0.1:")


def test_everything_listens_and_scrapes_on_loopback(config: dict[str, Any]) -> None:
    endpoints = list(_endpoints(config))
    assert len(endpoints) >= 5
    for endpoint in endpoints:
        assert endpoint.startswith("127.0.0.1:"), endpoint


def test_embedded_scrape_config_is_valid(config: dict[str, Any], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    # The prometheus receiver takes a Prometheus config: promtool can judge it.
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config["receivers"]["prometheus"]["config"]))
    result = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
