"""The Prometheus assets pass promtool: rules, their unit tests, and the scrape config."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parents[2] / "integrations" / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def _promtool(promtool: str, *args: str) -> str:
    # Run from the folder: rules_test.yml and scrape.yml name rules.yml relative to it.
    result = subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_rules_are_valid(promtool: str) -> None:
    output = _promtool(promtool, "check", "rules", "rules.yml")
    assert "SUCCESS" in output


def test_rules_unit_tests_pass(promtool: str) -> None:
    output = _promtool(promtool, "test", "rules", "rules_test.yml")
    assert "SUCCESS" in output


def test_scrape_config_is_a_valid_prometheus_config(promtool: str) -> None:
    output = _promtool(promtool, "check", "config", "scrape.yml")
    # promtool also checks the rule files the config loads.
    assert "is valid prometheus config file" in output
    assert "rules.yml" in output
