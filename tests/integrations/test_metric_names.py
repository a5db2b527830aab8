"""The Grafana dashboard and the Prometheus rules name only metrics the agent exposes.

Each ``rasp_*`` name in a PromQL expression must be a sample name of a family in the live
registry (``rasp_attacks_total`` for the counter family ``rasp_attacks``,
``rasp_check_duration_seconds_bucket`` for the histogram), and each recorded series
(``job:rasp_attacks:increase5m``) must be recorded by rules.yml.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from rasp.report import metrics

INTEGRATIONS = Path(__file__).resolve().parents[2] / "integrations"
DASHBOARD = INTEGRATIONS / "grafana" / "rasp-dashboard.json"
RULES = INTEGRATIONS / "prometheus" / "rules.yml"
RULES_TEST = INTEGRATIONS / "prometheus" / "rules_test.yml"

# Sample names a family of each type exposes (prometheus_client's text format).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
RASP_NAME = re.compile(r"\brasp_\w+")
# level:metric:operations; \b keeps a subquery's [5m:1m] out.
RECORDED_NAME = re.compile(r"\b[a-zA-Z_]\w*(?::\w+)+")
SEVERITIES = frozenset({"critical", "warning", "info"})


@pytest.fixture(scope="module")
def exposed() -> frozenset[str]:
    families = set(metrics.registry_names())
    types = {family.name: family.type for family in REGISTRY.collect() if family.name in families}
    assert types.keys() == families
    return frozenset(name + suffix for name, kind in types.items() for suffix in SUFFIXES[kind])


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _panel_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def _variable_queries(dashboard: dict[str, Any]) -> list[str]:
    found = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def _names(expr: str) -> tuple[set[str], set[str]]:
    """The raw metric names and the recorded series an expression reads."""
    recorded = set(RECORDED_NAME.findall(expr))
    raw = set(RASP_NAME.findall(RECORDED_NAME.sub(" ", expr)))
    return raw, recorded


def _recorded_by(rules: list[dict[str, Any]]) -> set[str]:
    return {rule["record"] for rule in rules if "record" in rule}


# --- the dashboard --------------------------------------------------------------------------


def test_dashboard_names_exist(dashboard: dict[str, Any], exposed: frozenset[str]) -> None:
    exprs = _panel_exprs(dashboard) + _variable_queries(dashboard)
    assert len(exprs) > 10
    for expr in exprs:
        raw, recorded = _names(expr)
        assert raw, f"no rasp metric in {expr!r}"
        assert raw <= exposed, f"{sorted(raw - exposed)} are not exposed by the agent: {expr!r}"
        # Portable: the dashboard works without rules.yml loaded.
        assert not recorded, f"{expr!r} reads recorded series {sorted(recorded)}"


def test_dashboard_shows_every_metric(dashboard: dict[str, Any]) -> None:
    used = " ".join(_panel_exprs(dashboard))
    missing = [name for name in metrics.registry_names() if not re.search(rf"\b{name}", used)]
    assert not missing, f"no panel shows {missing}"


def test_dashboard_variables(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"


def test_dashboard_panels_use_the_variables(dashboard: dict[str, Any]) -> None:
    selector = re.compile(r"\b(rasp_\w+)(\{[^}]*\})?")
    for panel in _panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            for match in selector.finditer(target["expr"]):
                matchers = match.group(2) or ""
                assert 'job=~"$job"' in matchers, (panel["title"], match.group(0))
                assert 'instance=~"$instance"' in matchers, (panel["title"], match.group(0))


def test_dashboard_layout(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in _panels(dashboard["panels"]):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_dashboard_check_duration_quantiles(dashboard: dict[str, Any]) -> None:
    exprs = _panel_exprs(dashboard)
    for quantile in ("0.5", "0.99"):
        assert any(
            expr.startswith(f"histogram_quantile({quantile},")
            and "rasp_check_duration_seconds_bucket" in expr
            and "by (kind, le)" in expr
            for expr in exprs
        ), quantile


# --- the rules ------------------------------------------------------------------------------


def test_rule_names_exist(rules: list[dict[str, Any]], exposed: frozenset[str]) -> None:
    recorded_here = _recorded_by(rules)
    for rule in rules:
        raw, recorded = _names(rule["expr"])
        assert raw or recorded or "up{" in rule["expr"], rule["expr"]
        assert raw <= exposed, f"{sorted(raw - exposed)} are not exposed: {rule['expr']!r}"
        assert recorded <= recorded_here, f"{sorted(recorded - recorded_here)} never recorded"


def test_alerts_are_labelled_and_annotated(rules: list[dict[str, Any]]) -> None:
    alerts = [rule for rule in rules if "alert" in rule]
    assert len(alerts) >= 5
    for alert in alerts:
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        assert {"summary", "description"} <= alert["annotations"].keys(), alert["alert"]
        assert "{{ $labels." in alert["annotations"]["description"] or alert["alert"] in {
            "RaspMetricsAbsent"  # absent() has no labels to tell
        }, alert["alert"]


def test_every_alert_is_unit_tested_firing_and_quiet(rules: list[dict[str, Any]]) -> None:
    tests = yaml.safe_load(RULES_TEST.read_text(encoding="utf-8"))
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules if "alert" in rule}
    assert alerts - fired == set(), "never shown firing"
    assert alerts - quiet == set(), "never shown quiet"
    assert (fired | quiet) <= alerts, "tests of alerts that do not exist"
