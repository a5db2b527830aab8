"""ORMs on real PostgreSQL are guarded through the drivers alone: nothing of theirs is patched.

SQLAlchemy 2 (psycopg 3 and psycopg2 dialects) and Django 5.2 (psycopg 3 in this process,
psycopg2 in a subprocess where psycopg 3 cannot be imported). Django's settings can be
configured once per process, so every in-process Django test lives in this module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sql_cases import PG_ATTACK, PG_CANARY, pg_rows, serving

import rasp

psycopg = pytest.importorskip("psycopg")
sqlalchemy = pytest.importorskip("sqlalchemy")
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, select, text  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402

# One table per process: other sessions may run this module against the same server.
TABLE = f"h5_orm_canary_{os.getpid()}"
CANARY = PG_CANARY
ATTACK = PG_ATTACK
ATTACK_UPDATE = f"UPDATE {TABLE} SET name = 'pwned' WHERE name = '{ATTACK}'"
URLS = {
    "psycopg": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "psycopg2": "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
}


rows = partial(pg_rows, table=TABLE)


# --- SQLAlchemy -------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = TABLE
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


people = Table(TABLE, MetaData(), Column("id", Integer, primary_key=True), Column("name", Text))


@pytest.fixture(params=sorted(URLS))
def engine(request: pytest.FixtureRequest, protected: rasp.Config, pg_canary: str) -> Iterator[Any]:
    pytest.importorskip(request.param)
    engine = create_engine(URLS[request.param])
    yield engine
    engine.dispose()


def _assert_text_blocked(engine: Any) -> None:
    """In the same request, the string-built twin is blocked: the engine is guarded."""
    with engine.connect() as conn:
        with pytest.raises(rasp.AttackBlocked):
            conn.execute(text(ATTACK_UPDATE))
        conn.rollback()


def test_sqlalchemy_string_built_text_is_blocked(engine: Any, pg_canary: str) -> None:
    with serving(ATTACK) as context, engine.connect() as conn:
        with pytest.raises(rasp.AttackBlocked):
            conn.execute(text(ATTACK_UPDATE))
        # AttackBlocked is a BaseException: SQLAlchemy treats it like KeyboardInterrupt and
        # invalidates that one DBAPI connection (not the pool); the app's next use is fine.
        assert conn.invalidated
        conn.rollback()
        assert conn.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar() == 2
    assert rows(pg_canary) == CANARY
    assert context.blocked is not None
    assert context.blocked.sink == engine.dialect.driver  # psycopg or psycopg2


def test_sqlalchemy_bound_parameters_pass_and_store_intact(engine: Any, pg_canary: str) -> None:
    with serving(ATTACK), engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {TABLE} VALUES (:id, :name)"), {"id": 3, "name": ATTACK})
        found = conn.execute(text(f"SELECT id FROM {TABLE} WHERE name = :n"), {"n": ATTACK})
        assert found.all() == [(3,)]
        _assert_text_blocked(engine)
    assert rows(pg_canary) == {**CANARY, 3: ATTACK}


def test_sqlalchemy_core_and_orm_where_on_user_input_pass(engine: Any, pg_canary: str) -> None:
    with serving(ATTACK):
        with engine.connect() as conn:
            assert conn.execute(select(people).where(people.c.name == ATTACK)).all() == []
            assert conn.execute(select(people.c.id).where(people.c.name == "bob")).all() == [(2,)]
        with Session(engine) as session:
            assert session.scalars(select(Person).where(Person.name == ATTACK)).all() == []
            session.add(Person(id=3, name=ATTACK))
            session.commit()
            assert session.scalars(select(Person.id).where(Person.name == ATTACK)).all() == [3]
        _assert_text_blocked(engine)
    assert rows(pg_canary) == {**CANARY, 3: ATTACK}


# --- Django (psycopg 3 in this process) ---------------------------------------------------

_models: dict[str, Any] = {}


@pytest.fixture
def django_db(protected: rasp.Config, pg_canary: str) -> Iterator[Any]:
    django = pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": "test",
                    "USER": "postgres",
                    "HOST": "127.0.0.1",
                    "PORT": "5432",
                }
            },
            INSTALLED_APPS=[],
        )
        django.setup()
    from django.db import connection, connections, models

    if "Person" not in _models:

        class DjangoPerson(models.Model):
            name = models.TextField()

            class Meta:
                app_label = "h5"
                db_table = TABLE
                managed = False

        _models["Person"] = DjangoPerson
    try:
        yield connection
    finally:
        connections.close_all()


def test_django_runs_on_psycopg3(django_db: Any) -> None:
    django_db.ensure_connection()
    assert isinstance(django_db.connection, psycopg.Connection)


def test_django_string_built_raw_is_blocked(django_db: Any, pg_canary: str) -> None:
    person = _models["Person"]
    with serving(ATTACK):
        with pytest.raises(rasp.AttackBlocked):
            list(person.objects.raw(f"{ATTACK_UPDATE} RETURNING id, name"))
    assert rows(pg_canary) == CANARY


def test_django_parameterised_raw_passes(django_db: Any, pg_canary: str) -> None:
    person = _models["Person"]
    with serving(ATTACK):
        assert list(person.objects.raw(f"SELECT * FROM {TABLE} WHERE name = %s", [ATTACK])) == []
        found = person.objects.raw(f"SELECT * FROM {TABLE} WHERE name = %s", ["bob"])
        assert [p.id for p in found] == [2]
        assert person.objects.filter(name=ATTACK).count() == 0
        # .iterator() goes through a server-side (named) cursor on PostgreSQL.
        assert list(person.objects.filter(name=ATTACK).iterator()) == []
        person.objects.create(id=3, name=ATTACK)
        with pytest.raises(rasp.AttackBlocked):
            list(person.objects.raw(f"SELECT * FROM {TABLE} WHERE name = '{ATTACK}'"))
    assert rows(pg_canary) == {**CANARY, 3: ATTACK}


def test_django_cursor_execute_blocks_string_built_and_passes_params(
    django_db: Any, pg_canary: str
) -> None:
    with serving(ATTACK):
        with django_db.cursor() as cursor:
            with pytest.raises(rasp.AttackBlocked):
                cursor.execute(ATTACK_UPDATE)
            cursor.execute(f"INSERT INTO {TABLE} VALUES (%s, %s)", [3, ATTACK])
    assert rows(pg_canary) == {**CANARY, 3: ATTACK}


# --- Django on psycopg2, in a subprocess where psycopg 3 cannot be imported --------------

_DJANGO_PSYCOPG2 = """
import sys
sys.modules["psycopg"] = None  # Django then falls back to psycopg2
import django
from django.conf import settings
import rasp
from rasp.context import _CURRENT, RequestContext, UserInput

settings.configure(
    DATABASES={{"default": {{"ENGINE": "django.db.backends.postgresql", "NAME": "test",
        "USER": "postgres", "HOST": "127.0.0.1", "PORT": "5432"}}}},
    INSTALLED_APPS=[],
)
django.setup()
rasp.protect(rasp.Config())
from django.db import connection, models
import psycopg2

class Person(models.Model):
    name = models.TextField()
    class Meta:
        app_label = "h5"
        db_table = {table!r}
        managed = False

attack = "x' OR '1'='1"
ctx = RequestContext("GET", "/", lambda c: [UserInput("query", "q", attack)])
token = _CURRENT.set(ctx)
try:
    assert [p.id for p in Person.objects.raw(
        "SELECT * FROM {table} WHERE name = %s", ["bob"])] == [2]
    assert isinstance(connection.connection, psycopg2.extensions.connection)
    try:
        list(Person.objects.raw(
            "UPDATE {table} SET name = 'pwned' WHERE name = '" + attack + "' RETURNING id, name"))
    except rasp.AttackBlocked:
        print("blocked")
finally:
    _CURRENT.reset(token)
    connection.close()
"""


def test_django_on_psycopg2_raw_is_blocked(pg_canary: str) -> None:
    pytest.importorskip("psycopg2")
    pytest.importorskip("django")
    code = textwrap.dedent(_DJANGO_PSYCOPG2.format(table=TABLE))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "blocked"
    assert rows(pg_canary) == CANARY
