"""A small Flask shop on SQLite, vulnerable to injections on purpose, protected by rasp.

Routes marked VULNERABLE build SQL or a shell line by string formatting, open a file named
by the user, or fetch a URL the user gave: each is a classic injection that the agent stops.
Routes marked SAFE bind user text as parameters (``?``): the right way, and
the agent never gets in their way. Run it with ``gunicorn -w 2 app:app`` (see README.md).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, abort, jsonify, request

import rasp

DB_PATH = os.environ.get("SHOP_DB") or os.path.join(tempfile.gettempdir(), "flask_shop.db")
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

app = Flask(__name__)


def rows(sql: str) -> list[dict]:
    with db() as connection:
        return [dict(row) for row in connection.execute(sql)]


@app.get("/products")
def search_products():
    # VULNERABLE: `name` lands in a string literal, `sort` in ORDER BY.
    name = request.args.get("name", "")
    sort = request.args.get("sort", "id")
    return jsonify(rows(f"SELECT * FROM products WHERE name LIKE '%{name}%' ORDER BY {sort}"))


@app.get("/products/<product_id>")
def product(product_id: str):
    # VULNERABLE: a number pasted into the statement (`/products/1 OR 1=1`).
    found = rows(f"SELECT * FROM products WHERE id = {product_id}")
    return jsonify(found[0]) if found else abort(404)


@app.post("/login")
def login():
    # VULNERABLE: the classic login form (`admin'--` skips the password check).
    user, password = request.form.get("user", ""), request.form.get("password", "")
    found = rows(f"SELECT id, name FROM users WHERE name = '{user}' AND password = '{password}'")
    return jsonify(logged_in=bool(found), user=found[0]["name"] if found else None)


@app.post("/api/users/lookup")
def lookup_user():
    # VULNERABLE: a JSON API; the input is at body.user.name.
    name = request.get_json(force=True)["user"]["name"]
    return jsonify(rows(f"SELECT id, name, email FROM users WHERE name = '{name}'"))


@app.post("/newsletter/unsubscribe")
def unsubscribe():
    # VULNERABLE, and the worst kind: executescript runs every statement it is given.
    email = request.form.get("email", "")
    with db() as connection:
        connection.executescript(f"DELETE FROM subscribers WHERE email = '{email}';")
    return jsonify(unsubscribed=email)


@app.get("/recommendations")
def recommendations():
    # VULNERABLE, and it hides its errors: a failed query quietly becomes an empty list.
    category = request.args.get("category", "office")
    try:
        found = rows(f"SELECT name, price FROM products WHERE category = '{category}'")
    except Exception:
        found = []
    return jsonify(found)


@app.post("/products/<int:product_id>/reviews")
def add_review(product_id: int):
    # SAFE: user text is bound as parameters, so it can hold any character.
    data = request.get_json() if request.is_json else request.form
    with db() as connection:
        review_id = connection.execute(
            "INSERT INTO reviews (product_id, author, body) VALUES (?, ?, ?)",
            (product_id, data.get("author", ""), data.get("body", "")),
        ).lastrowid
    return jsonify(id=review_id), 201


@app.get("/reviews/<int:review_id>")
def review(review_id: int):
    # SAFE: the id is bound as a parameter.
    with db() as connection:
        found = connection.execute("SELECT * FROM reviews WHERE id = ?", (review_id,)).fetchone()
    return jsonify(dict(found)) if found else abort(404)


@app.get("/safe/products")
def safe_search():
    # SAFE twin of /products: the pattern is a parameter, the sort column comes from a list.
    sort = {"name": "name", "price": "price"}.get(request.args.get("sort", ""), "id")
    pattern = f"%{request.args.get('name', '')}%"
    with db() as connection:
        found = connection.execute(
            f"SELECT * FROM products WHERE name LIKE ? ORDER BY {sort}", (pattern,)
        )
        return jsonify([dict(row) for row in found])


@app.get("/download")
def download():
    # VULNERABLE: the name is joined to the files folder as given (`../shop.db`).
    path = os.path.join(FILES_DIR, request.args.get("name", ""))
    try:
        with open(path, "rb") as handle:
            return handle.read(), 200, {"Content-Type": "application/octet-stream"}
    except OSError:
        abort(404)


@app.get("/tools/lookup")
def lookup_host():
    # VULNERABLE: a shell line built by formatting (`localhost; touch /tmp/pwned`).
    host = request.args.get("host", "localhost")
    result = subprocess.run(
        f"getent hosts {host}", shell=True, capture_output=True, text=True, timeout=10
    )
    return jsonify(output=result.stdout, status=result.returncode)


@app.get("/tools/lookup-safe")
def lookup_host_safe():
    # SAFE twin: an argument list, no shell; the host is one argument whatever it holds.
    host = request.args.get("host", "localhost")
    result = subprocess.run(["getent", "hosts", host], capture_output=True, text=True, timeout=10)
    return jsonify(output=result.stdout, status=result.returncode)


@app.get("/fetch")
def fetch():
    # VULNERABLE: fetches whatever URL it is given (server-side request forgery).
    url = request.args.get("url", "")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return jsonify(
                status=response.status, body=response.read(4096).decode("utf-8", "replace")
            )
    except (OSError, ValueError) as error:
        return jsonify(error=str(error)), 502


app.wsgi_app = rasp.wsgi(app.wsgi_app)
