from __future__ import annotations

import pytest
from app import app
from flask.testing import FlaskClient


@pytest.fixture
def client() -> FlaskClient:
    return app.test_client()


def test_search(client: FlaskClient) -> None:
    response = client.get("/search", query_string={"name": "alice"})
    assert response.status_code == 200
    assert response.json == {"names": ["alice"]}


def test_search_safe(client: FlaskClient) -> None:
    response = client.get("/search_safe", query_string={"name": "alice"})
    assert response.status_code == 200
    assert response.json == {"names": ["alice"]}


def test_report(client: FlaskClient) -> None:
    response = client.get("/report", query_string={"file": "report.txt"})
    assert response.status_code == 200
    assert response.text == "quarterly numbers\n"


def test_report_safe(client: FlaskClient) -> None:
    response = client.get("/report_safe", query_string={"id": "annual"})
    assert response.status_code == 200
    assert response.text == "quarterly numbers\n"


def test_ping(client: FlaskClient) -> None:
    response = client.get("/ping", query_string={"host": "localhost"})
    assert response.status_code == 200
    assert response.text == "localhost\n"


def test_ping_safe(client: FlaskClient) -> None:
    response = client.get("/ping_safe", query_string={"host": "localhost"})
    assert response.status_code == 200
    assert response.text == "localhost\n"
