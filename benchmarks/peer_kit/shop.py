"""The data behind ``POST /order`` and ``POST /micro``, and the loopback service the app calls.

``prepare`` fills ``<sandbox>/shop`` (a SQLite file and the locale files) and, when asked, the
same tables in PostgreSQL under a prefix; ``drop_postgres`` removes them. ``serve`` is the
loopback HTTP service (``python -m peer_kit.shop PORT``): every GET gets a small JSON
answer, which also carries the canary marker the SSRF cases look for.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

CATEGORIES = ("home-office", "kitchen", "garden", "toys", "books", "tools")
WORDS = ("oak", "chair", "desk", "lamp", "pine", "shelf", "walnut", "stool")
SCHEMA = (
    "CREATE TABLE {p}users (id integer PRIMARY KEY, name text, session text)",
    "CREATE TABLE {p}categories (id integer PRIMARY KEY, name text)",
    "CREATE TABLE {p}products (id integer PRIMARY KEY, name text, category text, price real)",
    "CREATE TABLE {p}reviews (id integer PRIMARY KEY, product_id integer, author text, body text)",
    "CREATE INDEX {p}products_category ON {p}products (category)",
    "CREATE INDEX {p}reviews_product ON {p}reviews (product_id)",
)
SESSION = "eyJ1c2VyIjoidXNlcjcifQ.ZmFrZQ.c2lnbmF0dXJl"
MARKER = "CANARY-7f3a"


def _rows() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "users": [(i, f"user{i}", SESSION if i == 7 else f"s{i}") for i in range(1, 51)],
        "categories": list(enumerate(CATEGORIES)),
        "products": [
            (i, f"{WORDS[i % 8]} {WORDS[i * 3 % 7]} {i}", CATEGORIES[i % 6], i * 0.75)
            for i in range(1, 601)
        ],
        "reviews": [
            (i, i % 600 + 1, f"user{i % 50}", "Sturdy and well made. " * 4) for i in range(1, 3001)
        ],
    }


def prepare(sandbox: Path, *, dsn: str | None = None, prefix: str = "") -> None:
    """Create the shop's SQLite file and locale files, and its PostgreSQL tables if ``dsn``."""
    shop = sandbox / "shop"
    (shop / "locales").mkdir(parents=True, exist_ok=True)
    for locale, greeting in (("en", "Thank you"), ("fr", "Merci"), ("de", "Danke")):
        labels = {"thanks": greeting, "total": "Total", "items": [f"label {i}" for i in range(40)]}
        (shop / "locales" / f"{locale}.json").write_text(json.dumps(labels), encoding="utf-8")
    database = shop / "shop.db"
    if not database.exists():
        connection = sqlite3.connect(database)
        with connection:
            _fill(connection.execute, connection.executemany, "", "?")
            connection.execute("PRAGMA journal_mode=WAL")
        connection.close()
    if dsn is not None:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as server, server.cursor() as cursor:
            drop_postgres(dsn, prefix)
            _fill(cursor.execute, cursor.executemany, prefix, "%s")
            for table in ("products", "reviews"):
                cursor.execute(f"ANALYZE {prefix}{table}")


def _fill(execute: Any, executemany: Any, prefix: str, mark: str) -> None:
    for statement in SCHEMA:
        execute(statement.format(p=prefix))
    for table, rows in _rows().items():
        marks = ", ".join([mark] * len(rows[0]))
        executemany(f"INSERT INTO {prefix}{table} VALUES ({marks})", rows)


def drop_postgres(dsn: str, prefix: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        for table in ("users", "categories", "products", "reviews"):
            connection.execute(f"DROP TABLE IF EXISTS {prefix}{table}")


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    body = json.dumps({"rate": 1.1, "marker": MARKER}).encode()
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            close = b"connection: close" in head.lower()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n".encode()
                + (b"Connection: close\r\n" if close else b"")
                + b"\r\n"
                + body
            )
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _serve(port: int) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def serve(port: int) -> None:
    """Serve the loopback service on 127.0.0.1:``port`` until killed."""
    asyncio.run(_serve(port))


if __name__ == "__main__":
    serve(int(sys.argv[1]))
