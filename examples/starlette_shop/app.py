"""A small Starlette shop on SQLite, vulnerable to injections on purpose, protected by rasp.

Routes marked VULNERABLE build SQL or a shell line by string formatting, open a file named
by the user, or fetch a URL the user gave: each is a classic injection that the agent stops.
Routes marked SAFE bind user text as parameters (``?``). The handlers are
async and call sqlite3 directly (short local queries; a real app might use a thread).
Run it with ``uvicorn app:app`` (see README.md).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import rasp

DB_PATH = os.environ.get("SHOP_DB") or os.path.join(tempfile.gettempdir(), "starlette_shop.db")
# Downloadable files; the shop's data (its database, its secrets) lies beside, outside it.
FILES_DIR = os.path.join(os.path.dirname(os.path.abspath(DB_PATH)), "files")

SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY, name TEXT, category TEXT,
                                     price REAL);
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT UNIQUE, password TEXT,
                                  email TEXT);
CREATE TABLE IF NOT EXISTS reviews (id INTEGER PRIMARY KEY, product_id INTEGER, author TEXT,
                                    body TEXT);
CREATE TABLE IF NOT EXISTS subscribers (email TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS canary (id INTEGER PRIMARY KEY, secret TEXT);
INSERT OR IGNORE INTO products VALUES (1, 'Desk lamp', 'home', 24.5), (2, 'Tea kettle',
    'kitchen', 31.0), (3, 'Notebook', 'office', 4.2), (4, 'Fountain pen', 'office', 58.0);
INSERT OR IGNORE INTO users VALUES (1, 'admin', 's3cret-admin', 'admin@shop.example'),
    (2, 'alice', 'wonderland', 'alice@shop.example');
INSERT OR IGNORE INTO canary VALUES (1, 'canary-secret-1'), (2, 'canary-secret-2');
"""

rasp.protect()  # before the first sqlite3.connect: connections opened earlier are not guarded


@contextmanager
def db() -> Iterator[sqlite3.Connection]:
    """One connection per use: commits on success, rolls back on error, always closes."""
    connection = sqlite3.connect(DB_PATH, timeout=30)
    connection.row_factory = sqlite3.Row
    try:
        with connection:
            yield connection
    finally:
        connection.close()


with db() as _connection:  # every worker runs this; the statements are idempotent
    _connection.executescript(SCHEMA)
os.makedirs(os.path.join(FILES_DIR, "manuals"), exist_ok=True)
for _name, _text in (("report-2024.pdf", "%PDF- yearly report"), ("my..notes.txt", "notes"),
                     ("manuals/lamp.txt", "lamp manual")):  # fmt: skip
    with open(os.path.join(FILES_DIR, _name), "w") as _file:
        _file.write(_text)


def rows(sql: str) -> list[dict]:
    with db() as connection:
        return [dict(row) for row in connection.execute(sql)]


async def search_products(request: Request) -> JSONResponse:
    # VULNERABLE: `name` lands in a string literal, `sort` in ORDER BY.
    name = request.query_params.get("name", "")
    sort = request.query_params.get("sort", "id")
    return JSONResponse(rows(f"SELECT * FROM products WHERE name LIKE '%{name}%' ORDER BY {sort}"))


async def product(request: Request) -> JSONResponse:
    # VULNERABLE: a number pasted into the statement (`/products/1 OR 1=1`).
    found = rows(f"SELECT * FROM products WHERE id = {request.path_params['product_id']}")
    if not found:
        raise HTTPException(404)
    return JSONResponse(found[0])


async def login(request: Request) -> JSONResponse:
    # VULNERABLE: the classic login form (`admin'--` skips the password check).
    form = await request.form()
    user, password = form.get("user", ""), form.get("password", "")
    found = rows(f"SELECT id, name FROM users WHERE name = '{user}' AND password = '{password}'")
    return JSONResponse({"logged_in": bool(found), "user": found[0]["name"] if found else None})


async def lookup_user(request: Request) -> JSONResponse:
    # VULNERABLE: a JSON API; the input is at body.user.name.
    name = (await request.json())["user"]["name"]
    return JSONResponse(rows(f"SELECT id, name, email FROM users WHERE name = '{name}'"))


async def unsubscribe(request: Request) -> JSONResponse:
    # VULNERABLE, and the worst kind: executescript runs every statement it is given.
    email = (await request.form()).get("email", "")
    with db() as connection:
        connection.executescript(f"DELETE FROM subscribers WHERE email = '{email}';")
    return JSONResponse({"unsubscribed": email})


async def recommendations(request: Request) -> JSONResponse:
    # VULNERABLE, and it hides its errors: a failed query quietly becomes an empty list.
    category = request.query_params.get("category", "office")
    try:
        found = rows(f"SELECT name, price FROM products WHERE category = '{category}'")
    except Exception:
        found = []
    return JSONResponse(found)


async def add_review(request: Request) -> JSONResponse:
    # SAFE: user text is bound as parameters, so it can hold any character.
    if request.headers.get("content-type", "").startswith("application/json"):
        data = await request.json()
    else:
        data = await request.form()
    with db() as connection:
        review_id = connection.execute(
            "INSERT INTO reviews (product_id, author, body) VALUES (?, ?, ?)",
            (request.path_params["product_id"], data.get("author", ""), data.get("body", "")),
        ).lastrowid
    return JSONResponse({"id": review_id}, status_code=201)


async def review(request: Request) -> JSONResponse:
    # SAFE: the id is bound as a parameter.
    with db() as connection:
        found = connection.execute(
            "SELECT * FROM reviews WHERE id = ?", (request.path_params["review_id"],)
        ).fetchone()
    if found is None:
        raise HTTPException(404)
    return JSONResponse(dict(found))


async def safe_search(request: Request) -> JSONResponse:
    # SAFE twin of /products: the pattern is a parameter, the sort column comes from a list.
    sort = {"name": "name", "price": "price"}.get(request.query_params.get("sort", ""), "id")
    pattern = f"%{request.query_params.get('name', '')}%"
    with db() as connection:
        found = connection.execute(
            f"SELECT * FROM products WHERE name LIKE ? ORDER BY {sort}", (pattern,)
        )
        return JSONResponse([dict(row) for row in found])


async def download(request: Request) -> Response:
    # VULNERABLE: the name is joined to the files folder as given (`../shop.db`).
    path = os.path.join(FILES_DIR, request.query_params.get("name", ""))
    try:
        with open(path, "rb") as handle:
            return Response(handle.read(), media_type="application/octet-stream")
    except OSError:
        raise HTTPException(404) from None


async def lookup_host(request: Request) -> JSONResponse:
    # VULNERABLE: a shell line built by formatting (`localhost; touch /tmp/pwned`).
    host = request.query_params.get("host", "localhost")
    process = await asyncio.create_subprocess_shell(
        f"getent hosts {host}", stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    return JSONResponse({"output": output.decode(), "status": process.returncode})


async def lookup_host_safe(request: Request) -> JSONResponse:
    # SAFE twin: an argument list, no shell; the host is one argument whatever it holds.
    host = request.query_params.get("host", "localhost")
    process = await asyncio.create_subprocess_exec(
        "getent", "hosts", host, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    return JSONResponse({"output": output.decode(), "status": process.returncode})


async def fetch(request: Request) -> JSONResponse:
    # VULNERABLE: fetches whatever URL it is given (server-side request forgery).
    url = request.query_params.get("url", "")
    try:
        async with httpx.AsyncClient(timeout=5, follow_redirects=True) as client:
            response = await client.get(url)
    except (httpx.HTTPError, ValueError) as error:
        return JSONResponse({"error": str(error)}, status_code=502)
    return JSONResponse({"status": response.status_code, "body": response.text[:4096]})


app = Starlette(
    routes=[
        Route("/download", download),
        Route("/tools/lookup", lookup_host),
        Route("/tools/lookup-safe", lookup_host_safe),
        Route("/fetch", fetch),
        Route("/products", search_products),
        Route("/products/{product_id}", product),
        Route("/login", login, methods=["POST"]),
        Route("/api/users/lookup", lookup_user, methods=["POST"]),
        Route("/newsletter/unsubscribe", unsubscribe, methods=["POST"]),
        Route("/recommendations", recommendations),
        Route("/products/{product_id:int}/reviews", add_review, methods=["POST"]),
        Route("/reviews/{review_id:int}", review),
        Route("/safe/products", safe_search),
    ]
)
app = rasp.asgi(app)
