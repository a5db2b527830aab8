"""SQLAlchemy 2 on the real MariaDB through PyMySQL and mysqlclient: a ``text()`` statement
built from user input is blocked, the same input bound as a parameter (Core and ORM) is data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from sql_cases import MYSQL_SEED, serving, unique_table
from sqlalchemy import Integer, String, Table, create_engine, select, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import rasp

# Unique per run: the same suite may run in two processes at once against one server.
TABLE = unique_table("h6_orm")
SEED = MYSQL_SEED
ATTACK = "nobody' OR 1=1 -- "
DRIVERS = {"pymysql": "pymysql", "mysqldb": "MySQLdb"}  # SQLAlchemy driver -> rasp sink


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = TABLE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(String(255))


accounts: Table = Account.__table__  # type: ignore[assignment]


request = partial(serving, path="/search")


@pytest.fixture(params=sorted(DRIVERS))
def engine(
    request: pytest.FixtureRequest, protected: rasp.Config, mariadb_params: dict[str, Any]
) -> Iterator[Engine]:
    url = URL.create(
        f"mysql+{request.param}",
        username=mariadb_params["user"],
        host=mariadb_params["host"],
        port=mariadb_params["port"],
        database=mariadb_params["database"],
        query={"charset": "utf8mb4"},
    )
    engine = create_engine(url)
    yield engine
    engine.dispose()


def test_string_built_text_is_blocked_and_never_reaches_the_server(
    engine: Engine, mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    statement = text(f"UPDATE {TABLE} SET secret = 'x' WHERE name = '{ATTACK}'")
    with request(ATTACK) as context:
        with pytest.raises(rasp.AttackBlocked) as info, engine.begin() as conn:
            conn.execute(statement)
        # SQLAlchemy takes a BaseException for an exit and drops that DB-API connection;
        # the engine itself goes on working.
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar() == 2
    incident = info.value.incident
    assert incident.sink == DRIVERS[engine.dialect.driver]
    assert (incident.dialect, incident.action) == ("mysql", "blocked")
    assert incident.input_value == ATTACK
    assert context.incidents == [incident]
    assert mysql_canary() == SEED


def test_the_attack_is_real_outside_a_request(
    engine: Engine, mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {TABLE} SET secret = 'x' WHERE name = '{ATTACK}'"))
    assert mysql_canary() == ((1, "alice", "x"), (2, "bob", "x"))


def test_bound_parameters_in_text_pass(
    engine: Engine, mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    with request(ATTACK) as context:
        with engine.begin() as conn:
            conn.execute(
                text(f"UPDATE {TABLE} SET secret = :secret WHERE name = :name"),
                {"secret": ATTACK, "name": "bob"},
            )
            found = conn.execute(
                text(f"SELECT name FROM {TABLE} WHERE secret = :secret"), {"secret": ATTACK}
            ).scalars()
            assert list(found) == ["bob"]
    assert context.incidents == []
    assert mysql_canary() == ((1, "alice", "s1"), (2, "bob", ATTACK))


def test_core_and_orm_statements_with_the_input_as_data_pass(
    engine: Engine, mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    with request(ATTACK) as context:
        with engine.begin() as conn:  # a multi-row INSERT through executemany
            conn.execute(
                accounts.insert(),
                [
                    {"id": 3, "name": ATTACK, "secret": "a"},
                    {"id": 4, "name": ATTACK, "secret": "b"},
                ],
            )
        with Session(engine) as session:
            found = session.scalars(select(Account).where(Account.name == ATTACK)).all()
            assert [account.id for account in found] == [3, 4]
            found[0].secret = ATTACK
            session.commit()
    assert context.incidents == []
    assert mysql_canary()[2:] == ((3, ATTACK, ATTACK), (4, ATTACK, "b"))


def test_monitor_mode_judges_a_sqlalchemy_statement_once(
    mariadb_params: dict[str, Any], mysql_canary: Callable[[], tuple[Any, ...]]
) -> None:
    rasp.protect(rasp.Config(mode=rasp.Mode.MONITOR))
    engine = create_engine(
        f"mysql+pymysql://{mariadb_params['user']}@{mariadb_params['host']}:"
        f"{mariadb_params['port']}/{mariadb_params['database']}"
    )
    try:
        with request(ATTACK) as context, engine.begin() as conn:
            conn.execute(text(f"UPDATE {TABLE} SET secret = 'x' WHERE name = '{ATTACK}'"))
    finally:
        engine.dispose()
        rasp.unprotect()
    assert [incident.action for incident in context.incidents] == ["monitored"]
    assert mysql_canary() == ((1, "alice", "x"), (2, "bob", "x"))
