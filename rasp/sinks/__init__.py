"""Patches of the libraries where injections do their damage, one module per family.

A patch is data: the module, the attribute and the wrapper. :func:`install` registers a
post-import hook per module (so import order never matters) and :func:`uninstall` puts back
every original that is still our wrapper. Both are idempotent.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import wrapt

from rasp.guard import contained

__all__ = ["Patch", "install", "installed", "uninstall"]

_log = logging.getLogger(__name__)

# The sink modules, each exposing PATCHES: tuple[Patch, ...]. They must not import the
# library they patch at their top level: the patches apply when the app imports it.
FAMILIES = (
    "rasp.sinks.sqlite",
    "rasp.sinks.psycopg",
    "rasp.sinks.psycopg2",
    "rasp.sinks.asyncpg",
    "rasp.sinks.pymysql",
    "rasp.sinks.mysqldb",
    "rasp.sinks.aiosqlite",
    "rasp.sinks.aiomysql",
    "rasp.sinks.process",
    "rasp.sinks.files",
    "rasp.sinks.network",
    "rasp.sinks.executors",
    # Not a sink: the frameworks' entry points, wrapped to set the request context.
    "rasp.entrypoints",
)


@dataclass(frozen=True, slots=True)
class Patch:
    module: str
    attribute: str
    """Dotted path inside the module: ``connect`` or ``Cursor.execute``."""
    make_wrapper: Callable[[Any], Any]
    """Given the original object, return its replacement."""


_lock = threading.RLock()
_active = False
_warned = False
_hooks_registered: set[str] = set()
# (module, attribute) -> (owner, name, original, replacement, inherited); ``inherited``: the
# class had no attribute of its own, so undoing the patch deletes ours.
_applied: dict[tuple[str, str], tuple[Any, str, Any, Any, bool]] = {}


def install() -> None:
    global _active, _warned
    with _lock:
        _active = True
        for patch in _all_patches():
            if patch.module in _hooks_registered:
                module = sys.modules.get(patch.module)
                if module is not None:
                    _on_import(module)
                continue
            _hooks_registered.add(patch.module)
            wrapt.register_post_import_hook(_on_import, patch.module)
        if not _warned:  # once per process: it walks the heap
            _warned = True
            contained("unguarded_connections", _warn_unguarded_connections)


def _warn_unguarded_connections() -> None:
    from rasp.sinks.sqlite import connections_opened_before

    count = connections_opened_before()
    if count:
        _log.warning(
            "rasp: %d sqlite3 connection(s) were opened before rasp.protect(); statements "
            "run on them are not checked. Call rasp.protect() before the app connects.",
            count,
        )


def uninstall() -> None:
    global _active
    with _lock:
        _active = False
        for key, (owner, name, original, replacement, inherited) in list(_applied.items()):
            if _lookup(owner, name) is replacement:
                if inherited:
                    delattr(owner, name)  # the class had no method of its own: inherit again
                else:
                    setattr(owner, name, original)
            del _applied[key]


def installed() -> list[str]:
    """The ``module.attribute`` names currently patched."""
    with _lock:
        return sorted(f"{module}.{attribute}" for module, attribute in _applied)


def _all_patches() -> list[Patch]:
    patches: list[Patch] = []
    for family in FAMILIES:
        patches.extend(importlib.import_module(family).PATCHES)
    return patches


def _on_import(module: ModuleType) -> None:
    # A hook that raises would break the host's import: contain everything.
    contained("patch", _apply_module, module)


def _apply_module(module: ModuleType) -> None:
    with _lock:
        if not _active:
            return
        for patch in _all_patches():
            if patch.module == module.__name__ and (patch.module, patch.attribute) not in _applied:
                _apply(module, patch)


def _lookup(owner: Any, name: str) -> Any:
    # On a class, getattr() binds: a wrapt FunctionWrapper comes back as a new bound wrapper
    # each time, never our replacement itself. Read the class attribute unbound.
    if isinstance(owner, type):
        return inspect.getattr_static(owner, name, None)
    return getattr(owner, name, None)


def _apply(module: ModuleType, patch: Patch) -> None:
    owner: Any = module
    *parents, name = patch.attribute.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = _lookup(owner, name)
    if original is None:
        raise AttributeError(f"{patch.module}.{patch.attribute} not found")
    # One object under two names (sqlite3.connect is copied from sqlite3.dbapi2 while the
    # package is imported): wrap the real original, never our own wrapper, so that it is
    # guarded once and uninstall() puts the real one back under both names.
    for _, _, earlier_original, earlier_replacement, _ in _applied.values():
        if original is earlier_replacement:
            original = earlier_original
    replacement = patch.make_wrapper(original)
    inherited = isinstance(owner, type) and name not in vars(owner)
    setattr(owner, name, replacement)
    _applied[(patch.module, patch.attribute)] = (owner, name, original, replacement, inherited)
    _log.debug("rasp: patched %s.%s", patch.module, patch.attribute)
