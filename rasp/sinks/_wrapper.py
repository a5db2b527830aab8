"""The wrapper every patch installs: a wrapt ``FunctionWrapper`` that copies and pickles
as the function it guards.

A plain proxy refuses both, and a patched ``open`` or ``shutil.rmtree`` is an ordinary
value to the app: handed to a ``ProcessPoolExecutor`` or ``multiprocessing`` (pickled by
reference), or kept in a structure that is ``copy.deepcopy``-ed. It pickles as
``getattr(importlib.import_module(module), name)`` of the original's module and name, so
the process that loads it needs nothing of the agent and gets whatever stands there,
guarded or not; a copy is the wrapper itself, as a copy of a function is.
"""

from __future__ import annotations

import importlib
import pickle
from typing import TYPE_CHECKING, Any

import wrapt

__all__ = ["Guarded"]

if TYPE_CHECKING:
    _FunctionWrapper = wrapt.FunctionWrapper[Any, Any]
else:  # wrapt 1.x's class takes no subscript at run time
    _FunctionWrapper = wrapt.FunctionWrapper


class Guarded(_FunctionWrapper):
    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        wrapped = self.__wrapped__
        module = getattr(wrapped, "__module__", None)
        qualname = getattr(wrapped, "__qualname__", "")
        found = _lookup(module, qualname) if module else None
        if not (found is wrapped or (isinstance(found, Guarded) and found.__wrapped__ is wrapped)):
            # As pickle says of a function that is not where its name points.
            raise pickle.PicklingError(
                f"Can't pickle {wrapped!r}: not found as {module}.{qualname}"
            )
        target: Any = _Call(importlib.import_module, module)
        *parents, name = qualname.split(".")
        for parent in parents:
            target = _Call(getattr, target, parent)
        return getattr, (target, name)

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__reduce_ex__(2)

    def __copy__(self) -> Guarded:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Guarded:
        return self


class _Call:
    """Pickles as ``function(*args)``: never itself in the pickle, only its reduction."""

    __slots__ = ("args", "function")

    def __init__(self, function: Any, *args: Any) -> None:
        self.function = function
        self.args = args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.function, self.args


def _lookup(module: str, qualname: str) -> Any:
    try:
        found: Any = importlib.import_module(module)
        for name in qualname.split("."):
            found = getattr(found, name)
    except Exception:
        return None
    return found
