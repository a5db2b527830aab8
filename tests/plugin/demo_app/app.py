from __future__ import annotations

import os
import sqlite3
import subprocess

from flask import Flask, request

BASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reports")
REPORTS = {"annual": "report.txt"}

app = Flask(__name__)


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE users (name TEXT)")
    db.executemany("INSERT INTO users VALUES (?)", [("alice",), ("bob",)])
    return db


@app.route("/search")
def search() -> dict[str, list[str]]:
    name = request.args["name"]
    db = _db()
    rows = db.execute(f"SELECT name FROM users WHERE name = '{name}'").fetchall()
    return {"names": [row[0] for row in rows]}


@app.route("/search_safe")
def search_safe() -> dict[str, list[str]]:
    name = request.args["name"]
    db = _db()
    rows = db.execute("SELECT name FROM users WHERE name = ?", (name,)).fetchall()
    return {"names": [row[0] for row in rows]}


@app.route("/report")
def report() -> str:
    name = request.args["file"]
    with open(os.path.join(BASE, name)) as handle:
        return handle.read()


@app.route("/report_safe")
def report_safe() -> str:
    name = REPORTS[request.args["id"]]
    with open(os.path.join(BASE, name)) as handle:
        return handle.read()


@app.route("/ping")
def ping() -> str:
    host = request.args["host"]
    done = subprocess.run(f"echo {host}", shell=True, capture_output=True, text=True)
    return done.stdout


@app.route("/ping_safe")
def ping_safe() -> str:
    host = request.args["host"]
    done = subprocess.run(["echo", host], capture_output=True, text=True)
    return done.stdout
