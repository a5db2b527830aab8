"""Tables and statements shared by the two driver apps and by the tests that check them.

Every table carries the prefix the test session hands in (``h9_wsgi``, ``h9_asgi``), since
other test sessions use the same PostgreSQL and MariaDB servers at the same time. The
VULNERABLE statements are templates filled in by string formatting (the bug on purpose); the
SAFE ones take their values as bound parameters (``%s``; converted for asyncpg and SQLite).
"""

from __future__ import annotations

import json
import os

DIALECTS = ("postgresql", "mysql", "sqlite")
SEED = ((1, "canary-secret-1"), (2, "canary-secret-2"))
"""The canary rows each app seeds: no attack may add, remove or change one."""
SEED_NOTE = (-1, "hello world")

_SHORT = {"postgresql": "pg", "mysql": "my", "sqlite": "sl"}
_QUOTE = {"postgresql": '"', "mysql": "`", "sqlite": '"'}
_NOTES_ID = {
    "postgresql": "id SERIAL PRIMARY KEY",
    "mysql": "id INT AUTO_INCREMENT PRIMARY KEY",
    "sqlite": "id INTEGER PRIMARY KEY AUTOINCREMENT",
}
_TEXT = {"postgresql": "TEXT", "mysql": "VARCHAR(1000)", "sqlite": "TEXT"}


def tables(prefix: str, dialect: str) -> tuple[str, str]:
    """The (canary, notes) table names of one app and dialect."""
    return f"{prefix}_{_SHORT[dialect]}_canary", f"{prefix}_{_SHORT[dialect]}_notes"


def create(prefix: str, dialect: str) -> list[str]:
    """Idempotent statements that create and seed one dialect's tables."""
    canary, notes = tables(prefix, dialect)
    text = _TEXT[dialect]
    seed = ", ".join(f"({key}, '{secret}')" for key, secret in SEED)
    # One note (id -1: never an id the sequences hand out) so the searches have a row to
    # evaluate their conditions on: without it `OR SLEEP(..)` or a cast would never run.
    note = f"(id, driver, note, tag) VALUES ({SEED_NOTE[0]}, 'seed', '{SEED_NOTE[1]}', '')"
    insert = {
        "postgresql": "INSERT INTO {} {} ON CONFLICT DO NOTHING",
        "mysql": "INSERT IGNORE INTO {} {}",
        "sqlite": "INSERT OR IGNORE INTO {} {}",
    }[dialect]
    return [
        f"CREATE TABLE IF NOT EXISTS {canary} (id INT PRIMARY KEY, secret {text} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {notes} ({_NOTES_ID[dialect]}, driver VARCHAR(40) NOT NULL,"
        f" note {text} NOT NULL, tag {text} NOT NULL)",
        insert.format(canary, f"VALUES {seed}"),
        insert.format(notes, note),
    ]


def drop(prefix: str, dialect: str) -> list[str]:
    return [f"DROP TABLE IF EXISTS {table}" for table in tables(prefix, dialect)]


def search(prefix: str, dialect: str, name: str, tag: str, id_: str, sort: str) -> str:
    """VULNERABLE: four inputs pasted into a SELECT (string, string, number, identifier)."""
    _, notes = tables(prefix, dialect)
    quote = _QUOTE[dialect]
    return (
        f"SELECT id, note FROM {notes} WHERE (note = '{name}' AND tag = '{tag}') "
        f"OR id = {id_} ORDER BY {quote}{sort}{quote}"
    )


def delete(prefix: str, dialect: str, note: str) -> str:
    """VULNERABLE: an input pasted into a DELETE, run where stacked statements are allowed."""
    _, notes = tables(prefix, dialect)
    return f"DELETE FROM {notes} WHERE note = '{note}'"


def insert_note(prefix: str, dialect: str) -> str:
    """SAFE: driver, note and tag bound as parameters."""
    _, notes = tables(prefix, dialect)
    returning = " RETURNING id" if dialect == "postgresql" else ""
    return f"INSERT INTO {notes} (driver, note, tag) VALUES (%s, %s, %s){returning}"


def find_notes(prefix: str, dialect: str) -> str:
    """SAFE twin of :func:`search`: driver, note and tag bound as parameters."""
    _, notes = tables(prefix, dialect)
    return f"SELECT id, note, tag FROM {notes} WHERE driver = %s AND note = %s AND tag = %s"


def numbered(sql: str) -> str:
    """``%s`` placeholders as asyncpg's ``$1, $2, ...``."""
    parts = sql.split("%s")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


def qmark(sql: str) -> str:
    """``%s`` placeholders as SQLite's ``?``."""
    return sql.replace("%s", "?")


def settings() -> tuple[str, str | None, dict[str, object] | None, str | None]:
    """(table prefix, PostgreSQL DSN, MariaDB settings, SQLite path) from the environment;
    a server the test session could not reach is absent, and its routes answer 503."""
    mariadb = os.environ.get("H9_MARIADB")
    return (
        os.environ["H9_TABLE_PREFIX"],
        os.environ.get("H9_PG_DSN") or None,
        json.loads(mariadb) if mariadb else None,
        os.environ.get("H9_SQLITE_PATH") or None,
    )
