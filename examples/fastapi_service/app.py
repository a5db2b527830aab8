"""A small FastAPI service on PostgreSQL, vulnerable to injections on purpose.

It holds no line of agent code: ``rasp run -- uvicorn app:app`` protects it as it is, and
``protected.py`` is the same app with ``app.add_middleware(rasp.ASGIMiddleware)`` (see
README.md). Routes marked VULNERABLE build SQL or a shell line by string formatting, open a
file named by the user, or fetch a URL the user gave; routes marked SAFE bind user text as
parameters or pass it as one argument.

Settings (environment): ``SERVICE_DSN`` (libpq DSN of the database), ``SERVICE_TABLE_PREFIX``
(so several copies can share one database), ``SERVICE_FILES`` (the downloadable files).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
import psycopg
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from psycopg.rows import dict_row
from pydantic import BaseModel

DSN = os.environ.get("SERVICE_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")
PREFIX = os.environ.get("SERVICE_TABLE_PREFIX", "fastapi_service_")
FILES_DIR = os.environ.get("SERVICE_FILES") or os.path.join(
    tempfile.gettempdir(), "fastapi_service", "files"
)
if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", PREFIX):
    raise SystemExit(f"SERVICE_TABLE_PREFIX={PREFIX!r}: lower-case letters, digits and _ only")
ITEMS, CANARY = f"{PREFIX}items", f"{PREFIX}canary"

SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {ITEMS} (id integer PRIMARY KEY, name text NOT NULL,"
    " price double precision NOT NULL)",
    f"INSERT INTO {ITEMS} VALUES (1, 'Desk lamp', 24.5), (2, 'Tea kettle', 31.0),"
    " (3, 'Notebook', 4.2), (4, 'Fountain pen', 58.0) ON CONFLICT (id) DO NOTHING",
    # No route reads this table: an attack that leaks, changes or drops it got through.
    f"CREATE TABLE IF NOT EXISTS {CANARY} (id integer PRIMARY KEY, secret text NOT NULL)",
    f"INSERT INTO {CANARY} VALUES (1, 'canary-secret-1'), (2, 'canary-secret-2')"
    " ON CONFLICT (id) DO NOTHING",
)
FILES = {"report-2024.pdf": "%PDF- yearly report", "my..notes.txt": "notes",
         "manuals/lamp.txt": "lamp manual"}  # fmt: skip

Row = dict[str, Any]


async def query(sql: str, params: tuple[Any, ...] | None = None) -> list[Row]:
    """Run one statement on a connection of its own (a pool, psycopg_pool's, is guarded the
    same way: the agent judges the cursor). Without parameters psycopg sends the text as
    is, so stacked statements (``...; DELETE ...``) run too: the classic worst case."""
    async with await psycopg.AsyncConnection.connect(
        DSN, autocommit=True, row_factory=dict_row
    ) as connection:
        cursor = await connection.execute(sql, params)
        return await cursor.fetchall() if cursor.description else []


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Outside any request: nothing here is checked. The advisory lock lets several uvicorn
    # workers create the same tables at once.
    async with await psycopg.AsyncConnection.connect(DSN) as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (PREFIX,))
        for statement in SCHEMA:
            await connection.execute(statement)
    for name, text in FILES.items():
        path = os.path.join(FILES_DIR, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
    yield


app = FastAPI(title="fastapi_service", lifespan=lifespan)


class Search(BaseModel):
    name: str
    max_price: float = 1e6


@app.get("/health")
async def health() -> Row:
    [row] = await query("SELECT 1 AS ok")
    return row


@app.get("/items")
async def list_items(sort: str = "id") -> list[Row]:
    # VULNERABLE: a query parameter as the ORDER BY clause (`?sort=price; DELETE FROM ...`).
    return await query(f"SELECT id, name, price FROM {ITEMS} ORDER BY {sort}")


@app.get("/items/{item_id}")
async def get_item(item_id: str) -> Row:
    # VULNERABLE: the path parameter pasted into the statement (`/items/0 OR 1=1`).
    rows = await query(f"SELECT id, name, price FROM {ITEMS} WHERE id = {item_id}")
    if not rows:
        raise HTTPException(404, "no such item")
    return rows[0]


@app.post("/items/search")
async def search_items(search: Search) -> list[Row]:
    # VULNERABLE: a JSON body field inside a string literal (`x'; DROP TABLE ...; --`).
    # `max_price` is safe: Pydantic made it a float before it reaches the statement.
    return await query(
        f"SELECT id, name, price FROM {ITEMS} WHERE name ILIKE '%{search.name}%'"
        f" AND price <= {search.max_price} ORDER BY id"
    )


@app.get("/safe/items")
async def list_items_safe(sort: Literal["id", "name", "price"] = "id") -> list[Row]:
    # SAFE twin: the column comes from a fixed list (anything else is FastAPI's 422).
    return await query(f"SELECT id, name, price FROM {ITEMS} ORDER BY {sort}")


@app.get("/safe/items/{item_id}")
async def get_item_safe(item_id: int) -> Row:
    # SAFE twin: an int, bound as a parameter.
    rows = await query(f"SELECT id, name, price FROM {ITEMS} WHERE id = %s", (item_id,))
    if not rows:
        raise HTTPException(404, "no such item")
    return rows[0]


@app.post("/safe/items/search")
async def search_items_safe(search: Search) -> list[Row]:
    # SAFE twin: the pattern and the price are bound; any text is just text.
    return await query(
        f"SELECT id, name, price FROM {ITEMS} WHERE name ILIKE %s AND price <= %s ORDER BY id",
        (f"%{search.name}%", search.max_price),
    )


@app.get("/download")
async def download(name: str) -> FileResponse:
    # VULNERABLE: the name joined to the files folder as given (`../secret.txt`).
    path = os.path.join(FILES_DIR, name)
    if not os.path.isfile(path):
        raise HTTPException(404, "no such file")
    return FileResponse(path)


@app.get("/tools/lookup")
async def lookup(host: str = "localhost") -> Row:
    # VULNERABLE: a shell line built by formatting (`localhost; touch /tmp/pwned`).
    process = await asyncio.create_subprocess_shell(
        f"getent hosts {host}", stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    return {"output": output.decode(), "status": process.returncode}


@app.get("/tools/lookup-safe")
async def lookup_safe(host: str = "localhost") -> Row:
    # SAFE twin: an argument list, no shell; the host is one argument whatever it holds.
    process = await asyncio.create_subprocess_exec(
        "getent", "hosts", host, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    return {"output": output.decode(), "status": process.returncode}


@app.get("/fetch")
async def fetch(url: str) -> Row:
    # VULNERABLE: fetches whatever URL it is given (server-side request forgery).
    try:
        async with httpx.AsyncClient(timeout=5, follow_redirects=True) as client:
            response = await client.get(url)
    except (httpx.HTTPError, ValueError) as error:
        raise HTTPException(502, str(error)) from None
    return {"status": response.status_code, "body": response.text[:4096]}
