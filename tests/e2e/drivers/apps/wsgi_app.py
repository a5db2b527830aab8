"""A Flask app on the synchronous database drivers, vulnerable on purpose, protected by rasp.

For each driver (psycopg 3, psycopg2, PyMySQL, mysqlclient) there is a VULNERABLE pair of
routes that build SQL by string formatting (``/<driver>/search``, ``/<driver>/delete``) and a
SAFE pair that binds the same inputs as parameters (``/<driver>/notes``). Run under gunicorn
with several sync workers; a connection is opened per request and closed after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The drivers are imported before rasp.protect() on purpose: import order must not matter.
import MySQLdb
import psycopg
import psycopg2
import pymysql
from flask import Flask, abort, jsonify, request
from h9_schema import create, delete, find_notes, insert_note, search, settings
from pymysql.constants import CLIENT

import rasp

rasp.protect()

PREFIX, PG_DSN, MARIADB, _ = settings()


def _mysqldb() -> Any:
    assert MARIADB is not None
    return MySQLdb.connect(  # mysqlclient allows stacked statements by default
        host=MARIADB["host"], port=MARIADB["port"], user=MARIADB["user"],
        password=MARIADB["password"], database=MARIADB["database"],
    )  # fmt: skip


CONNECT: dict[str, tuple[str, Callable[[], Any]]] = {
    "psycopg": ("postgresql", lambda: psycopg.connect(PG_DSN)),
    "psycopg2": ("postgresql", lambda: psycopg2.connect(PG_DSN)),
    # Many apps turn multi-statements on for migrations; it makes stacked attacks real.
    "pymysql": ("mysql", lambda: pymysql.connect(**MARIADB, client_flag=CLIENT.MULTI_STATEMENTS)),
    "mysqldb": ("mysql", _mysqldb),
}


def _setup() -> None:
    # Both gunicorn workers run this at start: a lock keeps the CREATEs from racing.
    if PG_DSN:
        with psycopg.connect(PG_DSN) as connection:
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (PREFIX,))
            for statement in create(PREFIX, "postgresql"):
                connection.execute(statement)
    if MARIADB:
        connection = pymysql.connect(**MARIADB)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT GET_LOCK(%s, 20)", (PREFIX,))
                for statement in create(PREFIX, "mysql"):
                    cursor.execute(statement)
                cursor.execute("SELECT RELEASE_LOCK(%s)", (PREFIX,))
            connection.commit()
        finally:
            connection.close()


_setup()
app = Flask(__name__)


def _run(driver: str, sql: str, params: tuple[Any, ...] | None = None) -> list[list[Any]]:
    """Run one statement on a fresh connection of ``driver``; commit; return the rows."""
    if driver not in CONNECT:
        abort(404)
    dialect, connect = CONNECT[driver]
    if (PG_DSN if dialect == "postgresql" else MARIADB) is None:
        abort(503)
    connection = connect()
    try:
        cursor = connection.cursor()
        try:
            if params is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql, params)
            rows = [list(row) for row in cursor.fetchall()] if cursor.description else []
        finally:
            cursor.close()
        connection.commit()
    finally:
        connection.close()
    return rows


def _dialect(driver: str) -> str:
    if driver not in CONNECT:
        abort(404)
    return CONNECT[driver][0]


@app.get("/health")
def health():
    return jsonify(ok=True)


@app.get("/<driver>/search")
def vulnerable_search(driver: str):
    # VULNERABLE: four inputs formatted into the statement.
    args = request.args
    sql = search(PREFIX, _dialect(driver), args.get("name", ""), args.get("tag", ""),
                 args.get("id", "0"), args.get("sort", "id"))  # fmt: skip
    return jsonify(_run(driver, sql))


@app.post("/<driver>/delete")
def vulnerable_delete(driver: str):
    # VULNERABLE: the note formatted into a DELETE; the drivers here run stacked statements.
    _run(driver, delete(PREFIX, _dialect(driver), request.form.get("note", "")))
    return jsonify(deleted=True)


@app.post("/<driver>/notes")
def add_note(driver: str):
    # SAFE: the same kind of input, bound as parameters.
    dialect = _dialect(driver)
    params = (driver, request.form.get("note", ""), request.form.get("tag", ""))
    if dialect == "postgresql":
        [[note_id]] = _run(driver, insert_note(PREFIX, dialect), params)
    else:
        note_id = _insert_mysql(driver, insert_note(PREFIX, dialect), params)
    return jsonify(id=note_id), 201


def _insert_mysql(driver: str, sql: str, params: tuple[Any, ...]) -> int:
    if MARIADB is None:
        abort(503)
    connection = CONNECT[driver][1]()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, params)
            note_id = cursor.lastrowid
        finally:
            cursor.close()
        connection.commit()
    finally:
        connection.close()
    return int(note_id)


@app.get("/<driver>/notes")
def find(driver: str):
    # SAFE twin of the search: the inputs are bound as parameters.
    params = (driver, request.args.get("note", ""), request.args.get("tag", ""))
    return jsonify(_run(driver, find_notes(PREFIX, _dialect(driver)), params))


app.wsgi_app = rasp.wsgi(app.wsgi_app)
