"""Low-noise alerts over real HTTP: a flood of one attack is one alert and one summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import _UVICORN, _require, _serve

if TYPE_CHECKING:
    from .conftest import Shop

WINDOW = 2.0
FLOOD = 12


@pytest.fixture(scope="module")
def windowed_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Starlette under uvicorn (one process: the windows are a process's), 2 s windows."""
    _require("uvicorn", "starlette")
    env = {"RASP_MODE": "block", "RASP_METRICS_PATH": "/metrics", "RASP_ALERT_WINDOW": "2s"}
    yield from _serve(tmp_path_factory, "starlette-windowed", "starlette_shop", _UVICORN, env)


def _records(shop: Shop, since: int) -> list[dict[str, Any]]:
    """The attack alerts and their summaries written after byte offset ``since``."""
    found = shop.alerts(since, event=None)
    return [r for r in found if str(r.get("event", "")).startswith("rasp.attack")]


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def test_a_flood_of_one_attack_is_one_alert_then_one_summary(windowed_shop: Shop) -> None:
    shop = windowed_shop
    offset = shop.stderr_size()
    with shop.client() as client:
        before = client.get("/metrics").text
        for i in range(FLOOD):
            # The same attack from the same input at the same code site: only the payload's
            # details vary, as in a scanner's burst.
            response = client.get("/products", params={"name": f"' OR {i}={i} --"})
            assert response.status_code == 403
        # Another input of the same route is another attack, alerted on its own.
        assert client.get("/download", params={"name": "../../etc/passwd"}).status_code == 403
        deadline = time.monotonic() + WINDOW + 5
        while time.monotonic() < deadline:
            if any(r["event"] == "rasp.attack.repeated" for r in _records(shop, offset)):
                break
            time.sleep(0.1)
        after = client.get("/metrics").text
    records = _records(shop, offset)
    attacks = [r for r in records if r["event"] == "rasp.attack"]
    summaries = [r for r in records if r["event"] == "rasp.attack.repeated"]
    assert sorted(a["kind"] for a in attacks) == ["path_traversal", "sql_injection"]
    (summary,) = summaries
    assert summary["repeats"] == FLOOD - 1
    assert summary["first_id"] == next(a["id"] for a in attacks if a["kind"] == "sql_injection")
    assert (summary["route"], summary["input_source"]) == ("/products", "query.name")
    assert "more times in the last" in summary["message"]
    # Every attack is still counted and blocked; only the log is quiet.
    suppressed = "rasp_alerts_suppressed_total"
    sql = {"kind": "sql_injection"}
    assert _counter(after, suppressed, **sql) - _counter(before, suppressed, **sql) == FLOOD - 1
    attacked = {"kind": "sql_injection", "route": "/products"}
    assert (
        _counter(after, "rasp_attacks_total", **attacked)
        - _counter(before, "rasp_attacks_total", **attacked)
        == FLOOD
    )
    logged = {"kind": "sql_injection", "event": "attack"}
    assert (
        _counter(after, "rasp_alerts_total", **logged)
        - _counter(before, "rasp_alerts_total", **logged)
        == 1
    )
