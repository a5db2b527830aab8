"""Monitor mode: the attack runs (the app stays as vulnerable as it is) and one alert is logged."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Shop


def test_monitor_mode_lets_the_attack_run_and_logs_one_alert(monitor_shop: Shop) -> None:
    marker = f"monitor-{uuid.uuid4().hex[:12]}"
    attack = f"x' UNION SELECT id, secret, '{marker}', 0 FROM canary --"
    with monitor_shop.client() as client:
        response = client.get("/products", params={"name": attack})

    # The statement ran: the canary's secrets leaked, which is what monitor mode allows.
    assert response.status_code == 200, response.text
    assert {row["name"] for row in response.json()} == {"canary-secret-1", "canary-secret-2"}
    assert "x-rasp-incident" not in response.headers
    lines = [line for line in monitor_shop.stderr().splitlines() if marker in line]
    assert len(lines) == 1, lines
    [alert] = [a for a in monitor_shop.alerts() if marker in a["input_value"]]
    assert alert["event"] == "rasp.attack"
    assert alert["action"] == "monitored" and alert["mode"] == "monitor"
    assert alert["input_source"] == "query.name"
    assert alert["input_value"] == attack
    assert alert["kind"] == "sql_injection"
    assert alert["method"] == "GET" and alert["path"] == "/products"
    assert alert["code_file"].endswith("app.py") and alert["code_line"] > 0
    assert marker not in alert["statement"]  # literals are redacted to ?
    assert monitor_shop.canary() == monitor_shop.seeded_canary


def test_monitor_mode_names_a_nested_json_input(monitor_shop: Shop) -> None:
    marker = f"monitor-{uuid.uuid4().hex[:12]}"
    attack = f"{marker}' OR 1=1 --"
    with monitor_shop.client() as client:
        response = client.post("/api/users/lookup", json={"user": {"name": attack}})

    assert response.status_code == 200, response.text
    assert {row["name"] for row in response.json()} == {"admin", "alice"}
    [alert] = [a for a in monitor_shop.alerts() if marker in a["input_value"]]
    assert alert["action"] == "monitored"
    assert alert["input_source"] == "body.user.name"
    assert alert["method"] == "POST" and alert["path"] == "/api/users/lookup"
