"""mysqlclient (``MySQLdb``): guard ``BaseCursor.execute``/``executemany`` and
``Connection.query``.

``Cursor``, ``DictCursor``, ``SSCursor`` and ``SSDictCursor`` all inherit ``execute`` and
``executemany`` from the Python class ``MySQLdb.cursors.BaseCursor``; they are checked with
the statement as the app wrote it, before the driver interpolates the escaped parameters.
``MySQLdb.connections.Connection.query`` is a Python override (it turns a ``bytearray``
into ``bytes``) of the C method ``_mysql.connection.query``; it is guarded for apps that
call it directly. Calling the C method itself, ``_mysql.connection.query(conn, sql)``, is
not guarded: its type is immutable. As for PyMySQL, only the outermost call is checked.
"""

from __future__ import annotations

from rasp.guard import Sink
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch
from rasp.sinks._dbapi import sql_method

__all__ = ["PATCHES"]

SINK = Sink("MySQLdb", Dialect.MYSQL, skip_modules=("MySQLdb",))

_method = sql_method(SINK, outermost=True)

PATCHES = (
    Patch("MySQLdb.cursors", "BaseCursor.execute", _method),
    Patch("MySQLdb.cursors", "BaseCursor.executemany", _method),
    Patch("MySQLdb.connections", "Connection.query", _method),
)
