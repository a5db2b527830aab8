"""Plain data and helpers shared by the SQL sink tests in tests/sinks/: the request context a
middleware would set, the MySQL and PostgreSQL attack tables, and the canary tables read back
through a connection of their own. The fixtures built on them are in tests/sinks/conftest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rasp.context import _CURRENT, RequestContext, UserInput


@contextmanager
def serving(value: str, path: str = "/") -> Iterator[RequestContext]:
    """Serve a request whose query parameter ``name`` is ``value``, as the middleware would."""
    context = RequestContext("GET", path, lambda c: [UserInput("query", "name", value)])
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


# --- MySQL / MariaDB ---------------------------------------------------------------------


def unique_table(prefix: str) -> str:
    """Unique per run: the same suite may run in two processes at once against one server."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


MYSQL_SEED = ((1, "alice", "s1"), (2, "bob", "s2"))

# name -> (statement template, user input). Each one changes the canary when it runs: see
# test_attacks_are_real_outside_a_request.
MYSQL_ATTACKS: dict[str, tuple[str, str]] = {
    "dash_comment": ("UPDATE {t} SET secret = 'x' WHERE name = '{v}'", "nobody' OR 1=1 -- "),
    "hash_comment": ("UPDATE {t} SET secret = 'x' WHERE name = '{v}'", "nobody' OR 1=1 #"),
    # The app doubles quotes, which MySQL's backslash escape undoes: '\'' OR 1=1 -- '
    "backslash": ("UPDATE {t} SET secret = 'x' WHERE name = '{q}'", "\\' OR 1=1 -- "),
    "executable_comment": ("UPDATE {t} SET secret = 'x' WHERE id = {v}", "0 /*!OR 1=1*/"),
    "backtick": ("UPDATE {t} SET `{v}` = 'x' WHERE id = 1", "secret` = 'pwned', `name"),
    "sleep": ("DELETE FROM {t} WHERE id = {v}", "0 OR SLEEP(0) = 0"),
    "union_select": (
        "INSERT INTO {t} (id, name, secret) SELECT id + 10, name, secret FROM {t}"
        " WHERE name = '{v}'",
        "nobody' UNION SELECT 99, 'mallory', 'pwned' -- ",
    ),
    "double_quoted": ("UPDATE {t} SET secret = 'x' WHERE name = \"{v}\"", 'nobody" OR "1"="1'),
    "mixed_case": ("UPDATE {t} SET secret = 'x' WHERE name = '{v}'", "nobody' oR 1=1 -- "),
}
MYSQL_STACKED = ("SELECT secret FROM {t} WHERE name = '{v}'", "nobody'; DELETE FROM {t}; -- ")


def build_mysql(table: str, template: str, value: str) -> str:
    """The statement a vulnerable app builds by pasting ``value`` into ``template``."""
    return template.format(t=table, v=value, q=value.replace("'", "''"))


# --- PostgreSQL --------------------------------------------------------------------------

PG_CANARY = {1: "alice", 2: "bob"}
PG_ATTACK = "x' OR '1'='1"


def pg_attacks(table: str) -> dict[str, tuple[str, str]]:
    """kind -> (user input, statement template the app fills by concatenation). Each one, if
    it ran, changes the canary table (test_attacks_are_real_outside_a_request proves it)."""
    return {
        "quote": (PG_ATTACK, "UPDATE {t} SET name = 'pwned' WHERE name = '{v}'"),
        "stacked": (f"1; DROP TABLE {table}", "UPDATE {t} SET name = name WHERE id = {v}"),
        "dollar": ("x$$ OR $$1$$=$$1", "UPDATE {t} SET name = 'pwned' WHERE name = $${v}$$"),
        "e-escape": ("\\' ' OR 1=1 --", "UPDATE {t} SET name = 'pwned' WHERE name = E'{v}'"),
        "cast": ("0 OR 1::int = 1", "UPDATE {t} SET name = 'pwned' WHERE id = {v}"),
        "pg_sleep": (
            "0 OR (SELECT 1 FROM pg_sleep(0.1)) = 1",
            "UPDATE {t} SET name = 'pwned' WHERE id = {v}",
        ),
    }


def pg_rows(dsn: str, table: str) -> dict[int, str] | None:
    """The canary table read through a separate connection; None when it is gone."""
    import psycopg  # not at the top: the MySQL tests import this module too

    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if exists is None or exists[0] is None:
            return None
        found: list[Any] = conn.execute(f"SELECT id, name FROM {table} ORDER BY id").fetchall()
        return dict(found)
