"""Canary tables for the SQL sink tests. Each fixture serves the requesting module's own
table, named by that module's ``TABLE`` (unique per run or per process), so modules that run
against one server at once never share rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sql_cases import MYSQL_SEED


@pytest.fixture(scope="module")
def mysql_admin(request: pytest.FixtureRequest, mariadb_params: dict[str, Any]) -> Iterator[Any]:
    """A PyMySQL connection of its own (not the app's) that owns the module's canary table."""
    import pymysql  # mariadb_params has made sure it is installed

    table = request.module.TABLE
    with pymysql.connect(**mariadb_params, autocommit=True) as connection:
        with connection.cursor() as cur:
            cur.execute(
                f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(64), secret VARCHAR(255))"
                " ENGINE=MEMORY CHARACTER SET utf8mb4"  # no fsync per reseed
            )
        try:
            yield connection
        finally:
            with connection.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture
def mysql_canary(request: pytest.FixtureRequest, mysql_admin: Any) -> Callable[[], tuple[Any, ...]]:
    """Seed the canary; return a reader that looks at it through the separate connection."""
    table = request.module.TABLE
    with mysql_admin.cursor() as cur:
        cur.execute(f"DELETE FROM {table}")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", MYSQL_SEED)

    def rows() -> tuple[Any, ...]:
        with mysql_admin.cursor() as cur:
            cur.execute(f"SELECT id, name, secret FROM {table} ORDER BY id")
            return tuple(cur.fetchall())

    assert rows() == MYSQL_SEED
    return rows


@pytest.fixture
def pg_canary(request: pytest.FixtureRequest, postgres_dsn: str) -> Iterator[str]:
    """A fresh canary table {1: alice, 2: bob}, dropped afterwards; yields the DSN."""
    import psycopg  # postgres_dsn has made sure it is installed

    table = request.module.TABLE
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'alice'), (2, 'bob')")
    yield postgres_dsn
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
