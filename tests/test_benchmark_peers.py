"""The peer benchmark's scoring and report (benchmarks/peers.py): what counts as detected,
missed and falsely flagged, and the tables the README gets. The servers it drives are
exercised by running it; these are the parts whose mistakes would publish wrong figures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def kit() -> ModuleType:
    """``peer_kit``, found the way ``peers.py`` finds it (importing it checks that too)."""
    spec = importlib.util.spec_from_file_location("peers_under_test", BENCHMARKS / "peers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # puts benchmarks/ on sys.path
    import peer_kit.corpus
    import peer_kit.phases
    import peer_kit.report

    return peer_kit


def _outcome(status: int, reached: bool, exploited: bool | None = None) -> dict[str, Any]:
    return {"status": status, "reached": reached, "exploited": exploited}


def test_scores_only_attacks_that_exploit_and_counts_false_positives(kit: ModuleType) -> None:
    Case = kit.corpus.Case
    cases = [
        Case("sql", "str", "x' OR '1'='1", "attack", "a-works"),
        Case("sql", "str", "x' #", "attack", "a-fails"),  # does not exploit without an agent
        Case("sql", "str", "x' --", "attack", "a-quiet"),  # blocked without a 403: not reached
        Case("sql", "safe_bound", "O'Brien", "honest", "h-passes"),
        Case("sql", "safe_bound", "Drop table covers", "honest", "h-flagged"),
        Case("sql", "str", "broken", "honest", "h-broken"),  # the app itself fails
    ]
    none = {
        "a-works": _outcome(200, True, True),
        "a-fails": _outcome(200, True, False),
        "a-quiet": _outcome(200, True, True),
        "h-passes": _outcome(200, True),
        "h-flagged": _outcome(200, True),
        "h-broken": _outcome(500, False),
    }
    agent = {
        "a-works": _outcome(403, False),
        "a-fails": _outcome(200, True),
        "a-quiet": _outcome(200, False),
        "h-passes": _outcome(200, True),
        "h-flagged": _outcome(500, False),
        "h-broken": _outcome(500, False),
    }
    missing = dict(agent, **{"a-works": _outcome(200, True)})
    rows, details = kit.phases.score(cases, {"none": none, "good": agent, "weak": missing})
    by_agent = {row["agent"]: row for row in rows}
    assert by_agent["good"] == {
        "agent": "good",
        "family": "sql",
        "attacks": 2,
        "detected": 2,
        "honest": 2,
        "false_positives": 1,
    }
    assert by_agent["weak"]["detected"] == 1
    assert details["broken_without_agent"] == ["h-broken"]
    assert details["agents"]["weak"]["missed"] == ["a-works"]
    assert details["agents"]["good"]["false_positives"] == ["h-flagged"]


def test_the_tables_give_ratios_added_latency_and_rates(kit: ModuleType) -> None:
    results = {
        "meta": {
            "date": "2026-11-26 04:00 UTC",
            "machine": "2 vCPU test",
            "python": "3.11.7",
            "quick": False,
            "agents": {"none": "no agent", "rasp": "ours"},
        },
        "overhead": kit.phases.summarize(
            "flask+gunicorn",
            "sqlite",
            {
                "none": [{"rps": 1000.0, "p50": 2.0, "p99": 5.0, "errors": 0, "socket_errors": 0}],
                "rasp": [{"rps": 990.0, "p50": 2.1, "p99": 5.5, "errors": 0, "socket_errors": 0}],
            },
            {"none": "200", "rasp": "403"},
        ),
        "accuracy": [
            {
                "agent": "rasp",
                "family": "sql",
                "attacks": 4,
                "detected": 3,
                "honest": 10,
                "false_positives": 0,
            }
        ],
    }
    text = kit.report.tables(results)
    assert "| flask+gunicorn, sqlite | rasp | 990 | 0.990 | 2.10 | 5.50 | +0.10 | +0.50 |" in text
    assert "| sql | rasp | 3/4 (75%) | 0/10 |" in text


def test_rounds_rotate_the_agents_order(kit: ModuleType) -> None:
    agents = ["none", "rasp", "zen", "ddtrace"]
    orders = [kit.phases.rotated(agents, round_) for round_ in range(4)]
    assert [order[0] for order in orders] == agents
    assert all(sorted(order) == sorted(agents) for order in orders)


def test_every_corpus_value_is_materialized_with_the_canary_port(kit: ModuleType) -> None:
    values = [kit.corpus.materialize(case, 4567) for case in kit.corpus.CASES]
    assert not any("{port}" in value for value in values)
    assert any("4567" in value for value in values)
