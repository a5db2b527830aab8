"""A Starlette app on the async database drivers, vulnerable on purpose, protected by rasp.

For each driver (asyncpg, psycopg 3's AsyncConnection, aiomysql, aiosqlite) there is a
VULNERABLE pair of routes that build SQL by string formatting (``/<driver>/search``,
``/<driver>/delete``) and a SAFE pair that binds the same inputs as parameters
(``/<driver>/notes``). Served by uvicorn; a connection is opened per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

# The drivers are imported before rasp.protect() on purpose: import order must not matter.
import aiomysql
import aiosqlite
import asyncpg
import psycopg
from h9_schema import create, delete, find_notes, insert_note, numbered, qmark, search, settings
from pymysql.constants import CLIENT
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import rasp

rasp.protect()

PREFIX, PG_DSN, MARIADB, SQLITE_PATH = settings()
DIALECT = {"asyncpg": "postgresql", "psycopg_async": "postgresql", "aiomysql": "mysql",
           "aiosqlite": "sqlite"}  # fmt: skip
Rows = list[list[Any]]


async def _asyncpg(sql: str, params: tuple[Any, ...] | None, write: bool) -> Rows:
    connection = await asyncpg.connect(_asyncpg_dsn())
    try:
        if params is None and write:
            await connection.execute(sql)  # no arguments: the simple protocol, stacking works
            return []
        rows = await connection.fetch(numbered(sql) if params else sql, *(params or ()))
        return [list(row.values()) for row in rows]
    finally:
        await connection.close()


def _asyncpg_dsn() -> str:
    assert PG_DSN is not None
    fields = dict(part.split("=", 1) for part in PG_DSN.split())
    return (f"postgresql://{fields.get('user', 'postgres')}@{fields['host']}:{fields['port']}"
            f"/{fields['dbname']}")  # fmt: skip


async def _psycopg_async(sql: str, params: tuple[Any, ...] | None, write: bool) -> Rows:
    async with await psycopg.AsyncConnection.connect(PG_DSN) as connection:
        cursor = connection.cursor()
        async with cursor:
            await cursor.execute(sql, params)
            return [list(row) for row in await cursor.fetchall()] if cursor.description else []


async def _aiomysql(sql: str, params: tuple[Any, ...] | None, write: bool) -> Rows:
    assert MARIADB is not None
    connection = await aiomysql.connect(
        host=MARIADB["host"], port=MARIADB["port"], user=MARIADB["user"],
        password=MARIADB["password"], db=MARIADB["database"],
        client_flag=CLIENT.MULTI_STATEMENTS,
    )  # fmt: skip
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(sql, params)
            if params is not None and sql.startswith("INSERT"):
                rows: Rows = [[cursor.lastrowid]]
            else:
                rows = [list(row) for row in await cursor.fetchall()] if cursor.description else []
        await connection.commit()
        return rows
    finally:
        connection.close()


async def _aiosqlite(sql: str, params: tuple[Any, ...] | None, write: bool) -> Rows:
    assert SQLITE_PATH is not None
    async with aiosqlite.connect(SQLITE_PATH, timeout=30) as connection:
        if params is None and write:
            await connection.executescript(sql)  # runs every statement it is given
            return []
        cursor = await connection.execute(qmark(sql) if params else sql, params or ())
        if params is not None and sql.startswith("INSERT"):
            rows: Rows = [[cursor.lastrowid]]
        else:
            rows = [list(row) for row in await cursor.fetchall()]
        await cursor.close()
        await connection.commit()
        return rows


RUN = {"asyncpg": _asyncpg, "psycopg_async": _psycopg_async, "aiomysql": _aiomysql,
       "aiosqlite": _aiosqlite}  # fmt: skip
SERVER = {"postgresql": PG_DSN, "mysql": MARIADB, "sqlite": SQLITE_PATH}


async def _run(driver: str, sql: str, params: tuple[Any, ...] | None = None, *,
               write: bool = False) -> Rows:  # fmt: skip
    if SERVER[DIALECT[driver]] is None:
        raise HTTPException(503)
    return await RUN[driver](sql, params, write)


def _dialect(request: Request) -> tuple[str, str]:
    driver = request.path_params["driver"]
    if driver not in DIALECT:
        raise HTTPException(404)
    return driver, DIALECT[driver]


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def vulnerable_search(request: Request) -> JSONResponse:
    # VULNERABLE: four inputs formatted into the statement.
    driver, dialect = _dialect(request)
    args = request.query_params
    sql = search(PREFIX, dialect, args.get("name", ""), args.get("tag", ""),
                 args.get("id", "0"), args.get("sort", "id"))  # fmt: skip
    return JSONResponse(await _run(driver, sql))


async def vulnerable_delete(request: Request) -> JSONResponse:
    # VULNERABLE: the note formatted into a DELETE, run where stacked statements are allowed.
    driver, dialect = _dialect(request)
    note = (await request.form()).get("note", "")
    await _run(driver, delete(PREFIX, dialect, str(note)), write=True)
    return JSONResponse({"deleted": True})


async def notes(request: Request) -> JSONResponse:
    # SAFE: the same kind of input, bound as parameters.
    driver, dialect = _dialect(request)
    if request.method == "POST":
        form = await request.form()
        params = (driver, str(form.get("note", "")), str(form.get("tag", "")))
        [[note_id]] = await _run(driver, insert_note(PREFIX, dialect), params)
        return JSONResponse({"id": note_id}, status_code=201)
    args = request.query_params
    params = (driver, args.get("note", ""), args.get("tag", ""))
    return JSONResponse(await _run(driver, find_notes(PREFIX, dialect), params))


async def _setup() -> None:
    if PG_DSN:
        connection = await asyncpg.connect(_asyncpg_dsn())
        try:
            for statement in create(PREFIX, "postgresql"):
                await connection.execute(statement)
        finally:
            await connection.close()
    if MARIADB:
        await _aiomysql_script(create(PREFIX, "mysql"))
    if SQLITE_PATH:
        async with aiosqlite.connect(SQLITE_PATH) as connection:
            await connection.executescript(";\n".join(create(PREFIX, "sqlite")))
            await connection.commit()


async def _aiomysql_script(statements: list[str]) -> None:
    for statement in statements:
        await _aiomysql(statement, None, True)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await _setup()  # outside any request: nothing is checked
    yield


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/{driver}/search", vulnerable_search),
        Route("/{driver}/delete", vulnerable_delete, methods=["POST"]),
        Route("/{driver}/notes", notes, methods=["GET", "POST"]),
    ],
    lifespan=lifespan,
)
app = rasp.asgi(app)
