"""/metrics served by the middleware counts what was blocked (across gunicorn's workers too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    import httpx

    from .conftest import Shop

# The route label is the framework's template: Flask's rule, Starlette's route path.
BLOCKED = {"kind": "sql_injection", "sink": "sqlite3", "action": "blocked", "route": "/products"}
ATTACKS = 4


def _scrape(client: httpx.Client) -> tuple[float, float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    attacks = requests = 0.0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            # Labels are small fixed sets: a payload must never become a label value.
            assert not any("'" in value for value in sample.labels.values())
            if sample.name == "rasp_attacks_total" and sample.labels == BLOCKED:
                attacks = sample.value
            elif sample.name == "rasp_requests_blocked_total":
                requests = sample.value
    return attacks, requests


def test_metrics_count_blocked_attacks(shop: Shop) -> None:
    with shop.client() as client:
        attacks_before, requests_before = _scrape(client)
        for i in range(ATTACKS):
            response = client.get("/products", params={"name": f"' OR {i}={i} --"})
            assert response.status_code == 403
        assert client.get("/products", params={"name": "lamp"}).status_code == 200
        attacks_after, requests_after = _scrape(client)

    assert attacks_after == attacks_before + ATTACKS
    assert requests_after == requests_before + ATTACKS
