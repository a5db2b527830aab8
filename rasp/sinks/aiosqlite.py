"""aiosqlite: guard its async API in the event loop, where the request context is.

aiosqlite runs every sqlite3 call in a worker thread of its own, started by a plain
``threading.Thread``, which does not inherit context variables: the sqlite3 guard sees no
request there. So the statement is checked on the loop, when the app calls the method and
before its coroutine exists. No public method calls another (``Connection.execute`` goes to
the sqlite3 connection in the thread, not to ``Cursor.execute``; ``execute_insert`` and
``execute_fetchall`` go to private helpers), so each statement is checked once; the sqlite3
guard underneath has no context in the worker thread and adds no second check.
"""

from __future__ import annotations

from rasp.guard import Sink
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch
from rasp.sinks._dbapi import sql_method

__all__ = ["PATCHES", "SINK"]

SINK = Sink("aiosqlite", Dialect.SQLITE, skip_modules=("aiosqlite",))

_sql = sql_method(SINK, keyword="sql")
_script = sql_method(SINK, keyword="sql_script")

PATCHES = (
    Patch("aiosqlite.core", "Connection.execute", _sql),
    Patch("aiosqlite.core", "Connection.executemany", _sql),
    Patch("aiosqlite.core", "Connection.executescript", _script),
    Patch("aiosqlite.core", "Connection.execute_fetchall", _sql),
    Patch("aiosqlite.core", "Connection.execute_insert", _sql),
    Patch("aiosqlite.cursor", "Cursor.execute", _sql),
    Patch("aiosqlite.cursor", "Cursor.executemany", _sql),
    Patch("aiosqlite.cursor", "Cursor.executescript", _script),
)
