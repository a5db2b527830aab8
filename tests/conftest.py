from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import rasp
from rasp import guard
from rasp.report import alerts

# Plain helpers shared by test modules (which, under --import-mode=importlib, cannot import
# one another): ``import sql_cases`` and the like resolve to tests/_support/.
sys.path.insert(0, str(Path(__file__).parent / "_support"))


@pytest.fixture(autouse=True)
def _agent_errors_fail_tests() -> Iterator[None]:
    # In production an internal error is swallowed (fail open); in tests it must fail loudly.
    guard.raise_internal_errors = True
    yield
    guard.raise_internal_errors = False


@pytest.fixture(autouse=True)
def _fresh_alert_windows() -> Iterator[None]:
    # The alert windows are the process's: one test's attacks must not fold another's.
    alerts.reset()
    yield
    alerts.reset()


@pytest.fixture
def protected() -> Iterator[rasp.Config]:
    """The agent installed in block mode for the test, removed afterwards."""
    config = rasp.protect(rasp.Config())
    yield config
    rasp.unprotect()


# --- real database servers (see ../shared/SERVICES.md) ------------------------------------

POSTGRES_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the local PostgreSQL server; the test is skipped, with the reason, without it."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {error}")
    return POSTGRES_DSN


@pytest.fixture(scope="session")
def mariadb_params() -> dict[str, object]:
    """Connection settings of the local MariaDB server; skipped, with the reason, without it."""
    pymysql = pytest.importorskip("pymysql", reason="PyMySQL is not installed")
    try:
        pymysql.connect(**MARIADB, connect_timeout=3).close()  # type: ignore[arg-type]
    except pymysql.err.OperationalError as error:
        pytest.skip(f"MariaDB is not reachable at 127.0.0.1:3306: {error}")
    return dict(MARIADB)
