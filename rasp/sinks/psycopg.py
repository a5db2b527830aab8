"""psycopg 3: guard every statement a cursor sends, sync and async.

psycopg 3's cursors are Python classes, so their methods are patched in place. The
chokepoints, read from psycopg 3.3's source, each guarding a statement exactly once:

- ``Cursor`` / ``AsyncCursor``: ``execute``, ``executemany``, ``copy`` and ``stream``; each
  runs its own generator, none calls another. ``ClientCursor`` and ``RawCursor`` (and
  Django's cursors) inherit them.
- ``ServerCursor`` / ``AsyncServerCursor``: ``execute`` is their own (it sends ``DECLARE``
  and never calls ``Cursor.execute``); their ``executemany`` only raises NotSupportedError.
- ``Connection.execute`` / ``AsyncConnection.execute`` are *not* patched: they call
  ``self.cursor().execute(...)``, which is guarded, so patching them too would report the
  same statement twice in monitor mode.

Queries can be ``str``, ``bytes`` or ``psycopg.sql.Composable``; :func:`render` gives the
text a Composable becomes, as the driver renders it for the cursor. Every method is checked
when called, before its coroutine, generator (``stream``) or context manager (``copy``)
exists, so a blocked statement is never sent.
"""

from __future__ import annotations

from rasp.guard import Sink
from rasp.lexers.sql import Dialect
from rasp.sinks import Patch
from rasp.sinks._dbapi import sql_method

__all__ = ["PATCHES", "SINK", "render"]


def render(query: object, owner: object) -> str | None:
    """The text the driver sends for ``query`` run by ``owner`` (a cursor or a connection):
    ``str`` as is, a psycopg or psycopg2 ``sql.Composable`` rendered with ``as_string``.

    None when it cannot be rendered (an unadaptable literal, a t-string template): the
    driver then fails in the same place, or sends parameters that are not SQL text.
    """
    if isinstance(query, str):
        return str(query)
    as_string = getattr(query, "as_string", None)
    if as_string is None:
        return None
    try:
        text = as_string(owner)
    except Exception:  # the driver raises the same error itself before sending anything
        return None
    if isinstance(text, bytes):
        return text.decode("utf-8", "surrogateescape")
    return text if isinstance(text, str) else None


SINK = Sink("psycopg", Dialect.POSTGRESQL, skip_modules=("psycopg", "psycopg_pool"), render=render)


# (method, keyword of its statement), on both Cursor and AsyncCursor.
_CURSOR_METHODS = (
    ("execute", "query"),
    ("executemany", "query"),
    ("copy", "statement"),
    ("stream", "query"),
)

PATCHES: tuple[Patch, ...] = (
    *(
        Patch("psycopg", f"{cls}.{name}", sql_method(SINK, keyword=keyword))
        for cls in ("Cursor", "AsyncCursor")
        for name, keyword in _CURSOR_METHODS
    ),
    Patch("psycopg", "ServerCursor.execute", sql_method(SINK)),
    Patch("psycopg", "AsyncServerCursor.execute", sql_method(SINK)),
)
