"""The driver apps under real servers: Flask on gunicorn (2 sync workers), Starlette on uvicorn.

Each app is started once per session on a free loopback port, with its stderr in a file (the
alert lines) and its own ``h9_``-prefixed tables, which the app creates at start-up and the
fixture drops at the end. A server that is not reachable is not handed to the app; the tests
that need it are skipped by the ``postgres_dsn`` / ``mariadb_params`` fixtures, with the reason.

Control run: ``H9_RASP_MODE=off pytest tests/e2e/drivers`` serves the same apps unprotected;
every attack test must then fail (the attacks are real: they leak, change or drop the canary).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from servers import Server, free_port, running

ROOT = Path(__file__).resolve().parents[3]
APPS = Path(__file__).resolve().parent / "apps"


def _load_schema() -> ModuleType:
    spec = importlib.util.spec_from_file_location("h9_schema", APPS / "h9_schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


schema = _load_schema()


@dataclass
class DriverApp(Server):
    """A running driver app: its address, its table prefix, its servers and its stderr."""

    prefix: str
    postgres_dsn: str | None
    mariadb: dict[str, Any] | None
    sqlite_path: Path

    seed: tuple[tuple[int, str], ...] = schema.SEED

    def tables(self, dialect: str) -> tuple[str, str]:
        """The (canary, notes) table names of this app for ``dialect``."""
        return schema.tables(self.prefix, dialect)  # type: ignore[no-any-return]

    # --- the test's own connections, never the app's ---------------------------------

    def sql(self, dialect: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple]:
        """Run one statement on a new connection of the test's own; return the rows."""
        if dialect == "postgresql":
            import psycopg

            with psycopg.connect(self.postgres_dsn) as connection:
                cursor = connection.execute(statement, params or None)
                return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        if dialect == "mysql":
            import pymysql

            connection = pymysql.connect(**self.mariadb)  # type: ignore[arg-type]
            try:
                with connection.cursor() as cursor:
                    cursor.execute(statement, params or None)
                    rows = [tuple(r) for r in cursor.fetchall()] if cursor.description else []
                connection.commit()
                return rows
            finally:
                connection.close()
        connection = sqlite3.connect(self.sqlite_path, timeout=30)
        try:
            with connection:
                rows = connection.execute(statement.replace("%s", "?"), params).fetchall()
            return [tuple(r) for r in rows]
        finally:
            connection.close()

    def canary(self, dialect: str) -> tuple[tuple[int, str], ...] | str:
        """The canary rows (or why they cannot be read, e.g. the table was dropped)."""
        canary, _ = schema.tables(self.prefix, dialect)
        try:
            return tuple(self.sql(dialect, f"SELECT id, secret FROM {canary} ORDER BY id"))
        except Exception as error:
            return f"canary unreadable: {error!r}"

    def reseed(self, dialect: str) -> None:
        """Put the canary back as seeded, so one missed attack does not fail every test."""
        canary, _ = schema.tables(self.prefix, dialect)
        self.sql(dialect, f"DROP TABLE IF EXISTS {canary}")
        for statement in schema.create(self.prefix, dialect):
            self.sql(dialect, statement)

    def drop_tables(self) -> None:
        for dialect in self.dialects():
            for statement in schema.drop(self.prefix, dialect):
                self.sql(dialect, statement)

    def dialects(self) -> list[str]:
        present = {"postgresql": self.postgres_dsn, "mysql": self.mariadb, "sqlite": True}
        return [dialect for dialect, server in present.items() if server]


def _optional(request: pytest.FixtureRequest, fixture: str) -> Any:
    """The value of a server fixture, or None when it skips (the server is absent)."""
    try:
        return request.getfixturevalue(fixture)
    except pytest.skip.Exception:
        return None


def _require(*modules: str) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"driver end-to-end tests need {', '.join(missing)} installed")


def _serve(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    server_args: list[str],
) -> Iterator[DriverApp]:
    workdir = tmp_path_factory.mktemp(f"h9-{name}")
    port = free_port()
    app = DriverApp(
        name=name,
        url=f"http://127.0.0.1:{port}",
        # Per session: the full suite may run in another process at the same time.
        prefix=f"h9_{name}_{os.getpid()}",
        stderr_path=workdir / "stderr.log",
        postgres_dsn=_optional(request, "postgres_dsn"),
        mariadb=_optional(request, "mariadb_params"),
        sqlite_path=workdir / "drivers.db",
    )
    app.drop_tables()  # leftovers of an interrupted run with this pid would hide a change
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASP_", "PROMETHEUS_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT)]),
        PYTHONUNBUFFERED="1",
        RASP_MODE=os.environ.get("H9_RASP_MODE", "block"),
        RASP_ALERT_WINDOW="0",  # every attack's own alert line, read by the tests
        H9_TABLE_PREFIX=app.prefix,
        H9_PG_DSN=app.postgres_dsn or "",
        H9_MARIADB=json.dumps(app.mariadb) if app.mariadb else "",
        H9_SQLITE_PATH=str(app.sqlite_path),
    )
    args = [sys.executable, "-m", *[a.replace("{port}", str(port)) for a in server_args]]
    try:
        # cwd is the temp dir so no pyproject.toml [tool.rasp] of the checkout applies.
        with running(app, args, workdir, env, "/health"):
            yield app
    finally:
        app.drop_tables()


@pytest.fixture(scope="session")
def wsgi_drivers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DriverApp]:
    """Flask on gunicorn, 2 sync workers: psycopg, psycopg2, pymysql, mysqldb."""
    _require("gunicorn", "flask", "psycopg", "psycopg2", "pymysql", "MySQLdb")
    args = ["gunicorn", "wsgi_app:app", "--bind", "127.0.0.1:{port}", "--workers", "2",
            "--log-level", "warning"]  # fmt: skip
    yield from _serve(request, tmp_path_factory, "wsgi", args)


@pytest.fixture(scope="session")
def asgi_drivers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DriverApp]:
    """Starlette on uvicorn: asyncpg, psycopg's AsyncConnection, aiomysql, aiosqlite."""
    _require("uvicorn", "starlette", "asyncpg", "psycopg", "aiomysql", "aiosqlite")
    args = ["uvicorn", "asgi_app:app", "--host", "127.0.0.1", "--port", "{port}",
            "--log-level", "warning", "--no-access-log"]  # fmt: skip
    yield from _serve(request, tmp_path_factory, "asgi", args)
