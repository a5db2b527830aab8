"""aiomysql: guard ``Cursor.execute``/``executemany`` and ``Connection.query`` (async).

All of aiomysql's cursor classes inherit ``execute`` and ``executemany`` from
``aiomysql.cursors.Cursor``. The statement is checked when the method is called, before its
coroutine exists, so a blocked statement is never sent; the template is checked, before the
driver interpolates the escaped parameters. As for PyMySQL (whose code aiomysql copies),
``executemany`` awaits ``execute`` and ``execute`` awaits ``Connection.query``: only the
outermost call is checked.
"""

from __future__ import annotations

from rasp.guard import Sink
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch
from rasp.sinks._dbapi import sql_method

__all__ = ["PATCHES"]

SINK = Sink("aiomysql", Dialect.MYSQL, skip_modules=("aiomysql", "pymysql"))

_method = sql_method(SINK, outermost=True)

PATCHES = (
    Patch("aiomysql.cursors", "Cursor.execute", _method),
    Patch("aiomysql.cursors", "Cursor.executemany", _method),
    Patch(
        "aiomysql.connection", "Connection.query", sql_method(SINK, keyword="sql", outermost=True)
    ),
)
