"""The wrapper every patch installs: a wrapt ``FunctionWrapper`` that copies and pickles
as the function it guards.

A plain proxy refuses both, and a patched ``open`` or ``shutil.rmtree`` is an ordinary
value to the app: handed to a ``ProcessPoolExecutor`` or ``multiprocessing`` (pickled by
reference), or kept in a structure that is ``copy.deepcopy``-ed. It pickles as a reference
to the original's module and name, which the other process resolves to whatever stands
there, guarded or not; a copy is the wrapper itself, as a copy of a function is.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import wrapt

__all__ = ["Guarded"]

if TYPE_CHECKING:
    _FunctionWrapper = wrapt.FunctionWrapper[Any, Any]
else:  # wrapt 1.x's class takes no subscript at run time
    _FunctionWrapper = wrapt.FunctionWrapper


class Guarded(_FunctionWrapper):
    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[str, str]]:
        wrapped = self.__wrapped__
        return _resolve, (wrapped.__module__, wrapped.__qualname__)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return self.__reduce_ex__(2)

    def __copy__(self) -> Guarded:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Guarded:
        return self


def _resolve(module: str, qualname: str) -> Any:
    found: Any = importlib.import_module(module)
    for name in qualname.split("."):
        found = getattr(found, name)
    return found
