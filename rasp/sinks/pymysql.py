"""PyMySQL: guard ``Cursor.execute``/``executemany`` and ``Connection.query``.

Every cursor class (``DictCursor``, ``SSCursor``, ``SSDictCursor``) inherits ``execute`` and
``executemany`` from ``pymysql.cursors.Cursor``, so two patches cover them all. The cursor
methods are checked with the statement *as the app wrote it*, before PyMySQL interpolates
the bound parameters client-side (escaped, so they are data). ``Connection.query`` takes
final SQL text; it is guarded for apps that call it directly.

The driver calls its own guarded methods on the way down: ``executemany`` loops over
``execute`` (or builds one multi-row ``INSERT`` and hands it, parameters already
interpolated, to ``execute``), and ``execute`` ends in ``Connection.query``. Only the
outermost call is checked, so a statement is judged once, on its template (one alert in
monitor mode, and no false alarm on interpolated data). The same holds for mysqlclient and
aiomysql (``sql_method(..., outermost=True)`` in :mod:`rasp.sinks._dbapi`).
"""

from __future__ import annotations

from rasp.guard import Sink
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch
from rasp.sinks._dbapi import sql_method

__all__ = ["PATCHES", "SINK"]

SINK = Sink("pymysql", Dialect.MYSQL, skip_modules=("pymysql",))

_method = sql_method(SINK, outermost=True)

PATCHES = (
    Patch("pymysql.cursors", "Cursor.execute", _method),
    Patch("pymysql.cursors", "Cursor.executemany", _method),
    Patch(
        "pymysql.connections", "Connection.query", sql_method(SINK, keyword="sql", outermost=True)
    ),
)
