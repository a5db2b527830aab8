"""pymysql: not guarded yet (work in progress)."""

from __future__ import annotations

from rasp.sinks import Patch

PATCHES: tuple[Patch, ...] = ()
