"""What the accuracy cases run against, built once under a sandbox folder before the
servers start: the SQLite database (with a table of secrets), the files an app serves and a
secret beside them, and the stub commands the shell cases run instead of real programs."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

SECRET_MARKER = "SECRET-5c1e-never-served"
STUBS = ("ping", "convert", "grep", "git", "tar", "nslookup", "id", "whoami", "uname", "cat",
         "curl", "wget", "nc", "sleep", "touch", "ls", "bash", "sh", "echo", "env", "python3",
         "mail", "chmod", "rm", "find", "xargs", "head", "base64", "ps", "hostname")  # fmt: skip
# Each stub appends its name and arguments to $STUB_LOG (0x1f between fields, 0x1e after).
STUB_SCRIPT = """#!/bin/sh
{ printf '%s' "${0##*/}"; for a in "$@"; do printf '\\037%s' "$a"; done; printf '\\036'; } \
>> "$STUB_LOG"
"""

PRODUCTS = [
    (1, "oak chair", 49.0, "chairs", ""), (2, "red chair", 39.5, "chairs", ""),
    (3, "pine desk", 120.0, "desks", ""), (4, "walnut desk", 310.0, "desks", ""),
    (5, "desk lamp", 25.0, "lamps", ""), (6, "floor lamp", 65.0, "lamps", ""),
    (7, "O'Brien armchair", 220.0, "chairs", ""), (8, "café table", 95.0, "tables", ""),
    (9, "red chair, oak", 44.0, "chairs", ""), (10, "bookshelf 5-tier", 80.0, "shelves", ""),
    (11, "Drop table covers", 12.0, "textiles", ""), (12, "Tom & Jerry mug", 9.5, "kitchen", ""),
    (13, "50% wool rug", 70.0, "textiles", ""), (14, "東京 lantern", 33.0, "lamps", ""),
    (15, "stool 🪑", 19.0, "chairs", ""), (16, "garden bench", 140.0, "garden", ""),
    (17, "Zoë's cushion", 15.0, "textiles", ""), (18, "prototype sofa", 999.0, "hidden", ""),
    (19, "union jack flag", 11.0, "textiles", ""), (20, "select oak shelf", 58.0, "shelves", ""),
]  # fmt: skip
USERS = [(1, "alice", f"{SECRET_MARKER}-1"), (2, "bob", f"{SECRET_MARKER}-2"),
         (3, "admin", f"{SECRET_MARKER}-3")]  # fmt: skip
FILES = {
    "report-2024.pdf": "%PDF- yearly report", "notes.v2.txt": "notes, second draft",
    "report..final.pdf": "%PDF- final", "my..notes.txt": "two dots", "..hidden": "dots first",
    "readme.txt": "read me", "a b.txt": "space", "50% off.txt": "sale", "résumé.txt": "cv",
    "manuals/lamp.txt": "lamp manual", "manuals/chair.txt": "chair manual",
    "manuals/v1.2/desk.txt": "desk manual", "東京/写真.txt": "photo", "O'Brien.txt": "letter",
    "Tom & Jerry.txt": "cartoon", "a;b.txt": "semicolon", "data.tar.gz": "archive",
}  # fmt: skip


def prepare(sandbox: Path, canary_url: str) -> None:
    """Build the cases' database, files and stub commands under ``sandbox`` (idempotent)."""
    del canary_url  # the SSRF cases need nothing prepared; kept for one call shape
    sandbox.mkdir(parents=True, exist_ok=True)
    database = sandbox / "cases.db"
    if not database.exists():
        partial = sandbox / "cases.db.tmp"
        partial.unlink(missing_ok=True)
        with closing(sqlite3.connect(partial)) as connection, connection:
            connection.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, "
                               "price REAL, category TEXT, note TEXT)")  # fmt: skip
            connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, "
                               "secret TEXT)")  # fmt: skip
            connection.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY, body TEXT)")
            connection.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)", PRODUCTS)
            connection.executemany("INSERT INTO users VALUES (?, ?, ?)", USERS)
        partial.replace(database)
    for name, text in FILES.items():
        target = sandbox / "files" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (sandbox / "secret.txt").write_text(SECRET_MARKER, encoding="utf-8")
    (sandbox / "work").mkdir(exist_ok=True)
    bin_dir = sandbox / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in STUBS:
        stub = bin_dir / name
        stub.write_text(STUB_SCRIPT, encoding="utf-8")
        stub.chmod(0o755)
