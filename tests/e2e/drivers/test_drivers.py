"""Real SQL injections over real HTTP through every database driver the agent guards.

Per driver, each attack of its dialect is sent to a VULNERABLE route (SQL built by string
formatting): it must be answered 403 with an incident id, logged as one alert naming the
app's code, and the canary table, read through the test's own connection afterwards, must
be exactly as seeded (so the statement never reached the server). The same strings sent to
the SAFE twin (bound parameters) are stored and read back intact with 200.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from .conftest import DriverApp

# driver -> (app fixture, dialect, server fixture that skips without the server)
DRIVERS = {
    "psycopg": ("wsgi_drivers", "postgresql", "postgres_dsn"),
    "psycopg2": ("wsgi_drivers", "postgresql", "postgres_dsn"),
    "pymysql": ("wsgi_drivers", "mysql", "mariadb_params"),
    "mysqldb": ("wsgi_drivers", "mysql", "mariadb_params"),
    "asyncpg": ("asgi_drivers", "postgresql", "postgres_dsn"),
    "psycopg_async": ("asgi_drivers", "postgresql", "postgres_dsn"),
    "aiomysql": ("asgi_drivers", "mysql", "mariadb_params"),
    "aiosqlite": ("asgi_drivers", "sqlite", None),
}
APP_FILE = {"wsgi_drivers": "wsgi_app.py", "asgi_drivers": "asgi_app.py"}

# (id, route, inputs, the input the alert must name); "{canary}" is the app's canary table.
# `search` is a GET: (note = '{name}' AND tag = '{tag}') OR id = {id} ORDER BY "{sort}";
# `delete` is a form POST: DELETE ... WHERE note = '{note}', where stacked statements run.
ATTACKS: dict[str, list[tuple[str, str, dict[str, str], str]]] = {
    "postgresql": [
        ("union", "search", {"name": "x') UNION SELECT id, secret FROM {canary} --"},
         "query.name"),
        ("union-casts", "search", {"id": "0 UNION SELECT id::int, secret::text FROM {canary}"},
         "query.id"),
        ("cast-error-leak", "search", {"id": "(SELECT secret FROM {canary} LIMIT 1)::int"},
         "query.id"),
        ("dollar-quoted-union", "search",
         {"id": "0 UNION SELECT 7, $$leak:$$ || secret FROM {canary} --"}, "query.id"),
        ("dollar-quoted-update", "delete",
         {"note": "x'; UPDATE {canary} SET secret = $h$owned$h$; --"}, "body.note"),
        ("e-escape-union", "search",
         {"id": "0 UNION SELECT id, E'\\x41\\'' || secret FROM {canary} --"}, "query.id"),
        ("standard-string-backslash", "search", {"name": "\\') OR 1=1 --"}, "query.name"),
        ("pg-sleep", "search", {"id": "0 OR (SELECT pg_sleep(0.1)) IS NOT NULL"}, "query.id"),
        ("stacked-pg-sleep", "search", {"id": "0; SELECT pg_sleep(0.1) --"}, "query.id"),
        ("stacked-drop", "delete", {"note": "x'; DROP TABLE {canary}; --"}, "body.note"),
        ("stacked-insert", "delete",
         {"note": "'; INSERT INTO {canary} VALUES (3, 'planted'); --"}, "body.note"),
        ("stacked-delete-numeric", "search", {"id": "0; DELETE FROM {canary} --"}, "query.id"),
        ("quoted-identifier-stacked", "search",
         {"sort": 'id"; UPDATE {canary} SET secret = \'owned\' --'}, "query.sort"),
    ],
    "mysql": [
        ("union-hash-comment", "search",
         {"name": "x') UNION SELECT id, secret FROM {canary} #"}, "query.name"),
        ("hash-comment-tautology", "search", {"name": "x') OR 1=1 #"}, "query.name"),
        # The backslash escapes the app's closing quote, so the next field is out of it.
        ("backslash-two-fields", "search",
         {"name": "\\", "tag": ") UNION SELECT id, secret FROM {canary} #"}, "query.tag"),
        ("escaped-backslash", "search",
         {"name": "\\\\') UNION SELECT id, secret FROM {canary} #"}, "query.name"),
        ("executable-comment-union", "search",
         {"id": "0 /*!UNION SELECT id, secret FROM {canary}*/"}, "query.id"),
        ("versioned-comment", "search", {"id": "0 /*!50000OR*/ 1=1"}, "query.id"),
        ("backtick-identifier-subquery", "search",
         {"sort": "id`, (SELECT secret FROM {canary} LIMIT 1) #"}, "query.sort"),
        ("backtick-identifier-stacked", "search",
         {"sort": "id`; DELETE FROM {canary}; #"}, "query.sort"),
        ("sleep", "search", {"id": "0 OR (SELECT SLEEP(0.1))"}, "query.id"),
        ("stacked-drop", "delete", {"note": "x'; DROP TABLE {canary}; #"}, "body.note"),
        ("stacked-update-hex", "delete",
         {"note": "x'; UPDATE {canary} SET secret = 0x6f776e6564; #"}, "body.note"),
        ("stacked-insert", "delete",
         {"note": "'; INSERT INTO {canary} VALUES (3, 'planted'); #"}, "body.note"),
    ],
    "sqlite": [
        ("union", "search", {"name": "x') UNION SELECT id, secret FROM {canary} --"},
         "query.name"),
        ("numeric-tautology", "search", {"id": "0 OR 1=1"}, "query.id"),
        ("stacked-drop", "delete", {"note": "x'; DROP TABLE {canary}; --"}, "body.note"),
        ("stacked-insert", "delete",
         {"note": "'; INSERT INTO {canary} VALUES (3, 'planted'); --"}, "body.note"),
        ("quoted-identifier", "search",
         {"sort": 'id", (SELECT secret FROM {canary} LIMIT 1) --'}, "query.sort"),
    ],
}  # fmt: skip

# Inputs that stay inside one token of the statement in this dialect: not attacks (200).
HONEST: dict[str, list[tuple[str, dict[str, str]]]] = {
    "postgresql": [
        ("plain", {"name": "hello world", "id": "2", "sort": "note"}),
        # PostgreSQL strings do not escape with a backslash: the tag stays inside its quotes.
        ("mysql-backslash-trick", {"name": "\\", "tag": ") OR 1=1 --"}),
        ("dollars-in-a-string", {"name": "costs $5, $$ each $h$"}),
    ],
    "mysql": [
        ("plain", {"name": "hello world", "id": "2", "sort": "note"}),
        # In MariaDB \' is an escaped quote: the whole input stays one string literal.
        ("escaped-quote", {"name": "\\' OR 1=1 --"}),
        ("comment-marks-in-a-string", {"name": "it''s # not /*! code */"}),
    ],
    "sqlite": [
        ("plain", {"name": "hello world", "id": "2", "sort": "note"}),
        ("backslash-is-plain", {"name": "\\", "tag": ") OR 1=1 --"}),
    ],
}


def _cases(table: dict[str, list[Any]]) -> list[Any]:
    return [
        pytest.param(driver, *case, id=f"{driver}-{case[0]}")
        for driver, (_, dialect, _) in DRIVERS.items()
        for case in table[dialect]
    ]


def _app(request: pytest.FixtureRequest, driver: str) -> tuple[DriverApp, str]:
    fixture, dialect, server = DRIVERS[driver]
    if server is not None:
        request.getfixturevalue(server)  # skips, with the reason, when the server is absent
    return request.getfixturevalue(fixture), dialect


def _fill(app: DriverApp, dialect: str, inputs: dict[str, str]) -> dict[str, str]:
    canary, _ = app.tables(dialect)
    return {key: value.replace("{canary}", canary) for key, value in inputs.items()}


def _send(client: httpx.Client, driver: str, route: str, inputs: dict[str, str]) -> Any:
    if route == "delete":
        return client.post(f"/{driver}/delete", data=inputs)
    return client.get(f"/{driver}/search", params=inputs)


def _canary_damage(app: DriverApp, dialect: str) -> str | None:
    """How the canary differs from its seed (re-seeded then, so that the next test is
    judged on its own attack only), or None when it is intact."""
    found = app.canary(dialect)
    if found == app.seed:
        return None
    app.reseed(dialect)
    return f"the {dialect} canary changed: {found!r}"


@pytest.mark.parametrize(("driver", "case", "route", "inputs", "source"), _cases(ATTACKS))
def test_attack_is_blocked_and_never_reaches_the_server(
    request: pytest.FixtureRequest,
    driver: str,
    case: str,
    route: str,
    inputs: dict[str, str],
    source: str,
) -> None:
    app, dialect = _app(request, driver)
    inputs = _fill(app, dialect, inputs)
    offset = app.stderr_size()
    with app.client() as client:
        response = _send(client, driver, route, inputs)
    damage = _canary_damage(app, dialect)  # read first: reseeds even if an assert fails

    assert response.status_code == 403, f"{response.status_code}: {response.text[:500]}"
    incident = response.json()["incident_id"]
    assert incident and incident == response.headers["x-rasp-incident"]
    assert "canary-secret" not in response.text
    [alert] = [a for a in app.alerts(offset) if a["id"] == incident]
    assert alert["action"] == "blocked"
    assert alert["dialect"] == dialect
    assert alert["input_source"] == source
    # The driver's own frames are skipped: the alert points at the app's line.
    assert alert["code_file"].endswith(APP_FILE[DRIVERS[driver][0]]), alert["code_file"]
    # Read through the test's own connection: no row added, removed or changed, not dropped.
    assert damage is None, damage


@pytest.mark.parametrize(("driver", "case", "route", "inputs", "source"), _cases(ATTACKS))
def test_parameterised_twin_stores_the_attack_intact(
    request: pytest.FixtureRequest,
    driver: str,
    case: str,
    route: str,
    inputs: dict[str, str],
    source: str,
) -> None:
    app, dialect = _app(request, driver)
    values = list(_fill(app, dialect, inputs).values())
    note, tag = values[0], (values[1] if len(values) > 1 else f"tag-{case}")
    offset = app.stderr_size()
    with app.client() as client:
        stored = client.post(f"/{driver}/notes", data={"note": note, "tag": tag})
        assert stored.status_code == 201, f"{stored.status_code}: {stored.text[:500]}"
        note_id = stored.json()["id"]
        found = client.get(f"/{driver}/notes", params={"note": note, "tag": tag})

    assert found.status_code == 200, f"{found.status_code}: {found.text[:500]}"
    assert [note_id, note, tag] in found.json()
    _, notes = app.tables(dialect)
    assert app.sql(dialect, f"SELECT note, tag FROM {notes} WHERE id = %s", (note_id,)) == [
        (note, tag)
    ]
    assert app.alerts(offset) == []
    assert _canary_damage(app, dialect) is None


@pytest.mark.parametrize(("driver", "case", "inputs"), _cases(HONEST))
def test_input_confined_to_one_token_is_not_blocked(
    request: pytest.FixtureRequest, driver: str, case: str, inputs: dict[str, str]
) -> None:
    app, dialect = _app(request, driver)
    offset = app.stderr_size()
    with app.client() as client:
        response = client.get(f"/{driver}/search", params=inputs)

    assert response.status_code == 200, f"{response.status_code}: {response.text[:500]}"
    assert "canary-secret" not in response.text
    if case == "plain":  # the honest query really ran: it found the seeded note
        assert [-1, "hello world"] in response.json()
    assert app.alerts(offset) == []
    assert _canary_damage(app, dialect) is None
