"""Honest inputs pass through untouched: 200, no alert, and they read back byte for byte."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .conftest import Shop


HONEST = [
    pytest.param("O'Brien", id="apostrophe"),
    pytest.param("Please select the blue one; don't drop it -- it's fragile (1=1, OR so).",
                 id="prose-with-sql-words"),
    pytest.param("o'brien+shop@example.com", id="email"),
    pytest.param(json.dumps({"rating": 5, "tags": ["a'b", "c\"d"], "note": "x; y"}), id="json"),
    pytest.param("Zoë ☕ 日本語 — «ça va» 🚀 \u200b", id="unicode"),
    pytest.param(("Lorem ipsum dolor sit amet, it's a SELECT * FROM review; -- long text.\n"
                  * 160)[:10240], id="10kb-text"),
]  # fmt: skip


@pytest.mark.parametrize("text", HONEST)
@pytest.mark.parametrize("encoding", ["form", "json"])
def test_honest_text_is_stored_and_read_back(shop: Shop, text: str, encoding: str) -> None:
    offset = shop.stderr_size()
    review = {"author": text, "body": f"{text}\n-- {text}"}
    with shop.client() as client:
        if encoding == "form":
            created = client.post("/products/1/reviews", data=review)
        else:
            created = client.post("/products/1/reviews", json=review)
        assert created.status_code == 201, created.text
        read = client.get(f"/reviews/{created.json()['id']}")
        # Query strings stay short of the servers' request-line limits (gunicorn: 4094).
        search = client.get("/safe/products", params={"name": text[:500], "sort": "price"})

    assert read.status_code == 200, read.text
    assert read.json()["author"] == text
    assert read.json()["body"] == review["body"]
    assert search.status_code == 200 and search.json() == []
    assert shop.alerts(offset) == []


def test_honest_use_of_the_vulnerable_routes_is_not_blocked(shop: Shop) -> None:
    # The agent judges what an input did to the statement, not what the route looks like.
    offset = shop.stderr_size()
    with shop.client() as client:
        lamp = client.get("/products", params={"name": "Desk lamp"})
        by_price = client.get("/products", params={"sort": "price DESC"})
        kettle = client.get("/products/2")
        login = client.post("/login", data={"user": "alice", "password": "wonderland"})
        wrong = client.post("/login", data={"user": "alice", "password": "guess"})
        lookup = client.post("/api/users/lookup", json={"user": {"name": "alice"}})
        unsubscribe = client.post("/newsletter/unsubscribe", data={"email": "bob@example.com"})

    assert [r.status_code for r in (lamp, by_price, kettle, login, wrong, lookup)] == [200] * 6
    assert unsubscribe.status_code == 200
    assert [p["name"] for p in lamp.json()] == ["Desk lamp"]
    assert [p["price"] for p in by_price.json()] == [58.0, 31.0, 24.5, 4.2]
    assert kettle.json()["name"] == "Tea kettle"
    assert login.json() == {"logged_in": True, "user": "alice"}
    assert wrong.json() == {"logged_in": False, "user": None}
    assert lookup.json() == [{"id": 2, "name": "alice", "email": "alice@shop.example"}]
    assert shop.alerts(offset) == []
