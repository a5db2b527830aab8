"""Files: every call that opens, lists, creates, changes or removes a path.

``builtins.open`` and ``io.open`` are one object under two names (``pathlib.Path.open``,
``read_text`` and ``write_text`` call ``io.open``); the ``os`` functions below are what
``pathlib``, ``shutil``, ``tempfile`` and ``os.path`` call, looked up on the module at call
time, so patching them here covers those too. Functions that call the others on the way
down (``os.makedirs``, ``shutil.rmtree``, ``shutil.copytree``, ...) are patched as well, so
that the path the app passed is judged once, before any work starts.
"""

from __future__ import annotations

from rasp.guard import Sink, check_path
from rasp.sinks import Patch
from rasp.sinks._calls import Extract, argument, outermost

__all__ = ["PATCHES", "PATHS"]

_SKIP = ("os", "io", "pathlib", "shutil", "tempfile", "genericpath", "posixpath", "ntpath")


def _patch(module: str, attribute: str, *extractors: Extract) -> Patch:
    sink = Sink(f"{module}.{attribute}" if module != "builtins" else attribute, None, _SKIP)
    return Patch(module, attribute, outermost(check_path, sink, *extractors))


# (module, function, names of the path arguments): documented in the README as the
# file-system chokepoints.
PATHS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("builtins", "open", ("file",)),
    ("io", "open", ("file",)),
    ("os", "open", ("path",)),
    ("os", "listdir", ("path",)),
    ("os", "scandir", ("path",)),
    ("os", "stat", ("path",)),
    ("os", "lstat", ("path",)),
    ("os", "access", ("path",)),
    ("os", "remove", ("path",)),
    ("os", "unlink", ("path",)),
    ("os", "rmdir", ("path",)),
    ("os", "removedirs", ("name",)),
    ("os", "mkdir", ("path",)),
    ("os", "makedirs", ("name",)),
    ("os", "rename", ("src", "dst")),
    ("os", "renames", ("old", "new")),
    ("os", "replace", ("src", "dst")),
    ("os", "link", ("src", "dst")),
    ("os", "symlink", ("src", "dst")),
    ("os", "readlink", ("path",)),
    ("os", "chmod", ("path",)),
    ("os", "chown", ("path",)),
    ("os", "truncate", ("path",)),
    ("os", "utime", ("path",)),
    ("shutil", "copyfile", ("src", "dst")),
    ("shutil", "copy", ("src", "dst")),
    ("shutil", "copy2", ("src", "dst")),
    ("shutil", "copytree", ("src", "dst")),
    ("shutil", "move", ("src", "dst")),
    ("shutil", "rmtree", ("path",)),
)

PATCHES = tuple(
    _patch(module, function, *(argument(i, name) for i, name in enumerate(names)))
    for module, function, names in PATHS
)
