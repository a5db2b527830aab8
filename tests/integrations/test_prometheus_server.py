"""A real Prometheus scrapes a protected app and loads the rules; the dashboard's queries run.

The Flask example shop runs under gunicorn (2 workers, metrics added up across them) on
loopback; Prometheus scrapes it every second with the ``rasp-app`` job of scrape.yml and
evaluates rules.yml every second.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import Server, free_port, running

ROOT = Path(__file__).resolve().parents[2]
INTEGRATIONS = ROOT / "integrations"
RULES = INTEGRATIONS / "prometheus" / "rules.yml"
SHOP = ROOT / "examples" / "flask_shop"
ATTACKS = 5
POLL_TIMEOUT = 30.0
CLIENT_TIMEOUT = 10.0
# What the dashboard's variables and interval macros stand for in these queries.
# Metrics these requests leave at nothing: their panels may be empty.
QUIET = frozenset(
    {"rasp_inputs_skipped_total", "rasp_internal_errors_total", "rasp_alerts_suppressed_total"}
)
GRAFANA_MACROS = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$job": ".*",
    "$instance": ".*",
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The Flask shop under gunicorn, block mode, metrics at /metrics."""
    missing = [name for name in ("gunicorn", "flask") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the shop needs {', '.join(missing)} (pip install -e .[test])")
    workdir = tmp_path_factory.mktemp("shop")
    (workdir / "prometheus").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASP_", "PROMETHEUS_"))}
    env.pop("prometheus_multiproc_dir", None)
    env.update(
        PYTHONPATH=os.pathsep.join([str(SHOP), str(ROOT)]),
        SHOP_DB=str(workdir / "shop.db"),
        RASP_MODE="block",
        RASP_METRICS_PATH="/metrics",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "prometheus"),
    )
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "app:app", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--log-level", "warning"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    server = Server("flask shop", url, workdir / "stderr.log", timeout=CLIENT_TIMEOUT)
    # cwd is the temp dir so no pyproject.toml [tool.rasp] of the checkout applies.
    with running(server, args, workdir, env, "/products/1"):
        yield server


@pytest.fixture(scope="module")
def prometheus(shop: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Prometheus scraping the shop with scrape.yml's rasp-app job, every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server is not installed (Debian: apt-get install prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus")
    example = yaml.safe_load((INTEGRATIONS / "prometheus" / "scrape.yml").read_text())
    job = next(job for job in example["scrape_configs"] if job["job_name"] == "rasp-app")
    job = {**job, "scrape_interval": "1s", "scrape_timeout": "1s",
           "static_configs": [{"targets": [shop.url.removeprefix("http://")]}]}  # fmt: skip
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [job],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    args = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    url = f"http://127.0.0.1:{port}"
    server = Server("prometheus", url, workdir / "stderr.log", timeout=CLIENT_TIMEOUT)
    with running(server, args, workdir, None, "/-/ready"):
        yield server


@pytest.fixture(scope="module")
def attacked(shop: Server, prometheus: Server) -> Server:
    """The shop after ATTACKS blocked SQL injections (and one honest request)."""
    with shop.client() as client:
        for i in range(ATTACKS):
            response = client.get("/products", params={"name": f"' OR {i}={i} --"})
            assert response.status_code == 403, response.text
        assert client.get("/products", params={"name": "lamp"}).status_code == 200
    return prometheus


def _api(prometheus: Server, path: str, **params: str) -> Any:
    with prometheus.client() as client:
        response = client.get(f"/api/v1/{path}", params=params)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (params, body)
    return body["data"]


def _poll(what: str, get: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        value = get()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} after {POLL_TIMEOUT} s: {json.dumps(value)[:2000]}")
        time.sleep(0.25)


def _query(prometheus: Server, expr: str) -> list[dict[str, Any]]:
    return _api(prometheus, "query", query=expr)["result"]  # type: ignore[no-any-return]


def _value(result: list[dict[str, Any]]) -> float | None:
    return float(result[0]["value"][1]) if result else None


def test_prometheus_counts_the_blocked_attacks(attacked: Server) -> None:
    expr = 'sum(rasp_attacks_total{kind="sql_injection"})'
    result = _poll(
        f"{expr} never reached {ATTACKS}",
        lambda: _query(attacked, expr),
        lambda result: _value(result) == ATTACKS,
    )
    assert _value(result) == ATTACKS
    blocked = _query(attacked, 'rasp_attacks_total{kind="sql_injection"}')
    assert [series["metric"]["action"] for series in blocked] == ["blocked"]
    assert [series["metric"]["route"] for series in blocked] == ["/products"]
    assert [series["metric"]["job"] for series in blocked] == ["rasp-app"]
    # The denominators of the blocked ratio: every request served, the blocked ones.
    assert _value(_query(attacked, "sum(rasp_requests_blocked_total)")) == ATTACKS
    served = _value(_query(attacked, "sum(rasp_requests_total)"))
    assert served is not None and served >= ATTACKS + 1


def test_rules_load_and_evaluate(attacked: Server) -> None:
    document = yaml.safe_load(RULES.read_text())
    expected = {
        rule.get("alert") or rule["record"]
        for group in document["groups"]
        for rule in group["rules"]
    }

    def rules() -> list[dict[str, Any]]:
        groups = _api(attacked, "rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    loaded = _poll(
        "the rules were not all evaluated without error",
        rules,
        lambda rules: rules and all(rule["health"] == "ok" for rule in rules),
    )
    assert {rule["name"] for rule in loaded} == expected


def test_a_single_blocked_attack_fires_an_alert(attacked: Server) -> None:
    def firing() -> list[dict[str, str]]:
        alerts = _api(attacked, "alerts")["alerts"]
        return [alert["labels"] for alert in alerts if alert["state"] == "firing"]

    labels = _poll(
        "RaspAttackBlocked did not fire",
        firing,
        lambda alerts: any(alert["alertname"] == "RaspAttackBlocked" for alert in alerts),
    )
    blocked = [alert for alert in labels if alert["alertname"] == "RaspAttackBlocked"]
    assert blocked == [
        {"alertname": "RaspAttackBlocked", "severity": "info", "job": "rasp-app",
         "kind": "sql_injection", "sink": "sqlite3", "route": "/products"}
    ]  # fmt: skip
    # Blocked, in block mode, without errors: nothing else to say.
    names = {alert["alertname"] for alert in labels}
    assert not names & {"RaspAttackNotBlocked", "RaspInternalErrors", "RaspAgentNotBlocking"}


def test_dashboard_queries_run(attacked: Server) -> None:
    dashboard = json.loads((INTEGRATIONS / "grafana" / "rasp-dashboard.json").read_text())
    panels = dashboard["panels"] + [p for row in dashboard["panels"] for p in row.get("panels", [])]
    exprs = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(selector, label): the selector is the query Grafana runs.
            query = variable["query"]["query"]
            exprs.append(query.removeprefix("label_values(").rsplit(",", 1)[0])
    assert len(exprs) > 10
    for expr in exprs:
        for macro, value in GRAFANA_MACROS.items():
            expr = expr.replace(macro, value)
        names = set(re.findall(r"\brasp_\w+", expr))
        if names <= QUIET:
            _query(attacked, expr)  # fails on a PromQL error
        else:
            # Attacks were blocked and requests served: every other panel shows data.
            _poll(f"no data for {expr!r}", lambda expr=expr: _query(attacked, expr), bool)
