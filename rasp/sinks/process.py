"""Processes: shell lines and argument lists, checked before anything starts.

``subprocess.Popen.__init__`` is the chokepoint for ``run``, ``call``, ``check_output``,
``getoutput``, ``os.popen`` and asyncio's ``create_subprocess_shell/exec`` (which build a
``Popen`` in the task that awaits them). ``os.system`` and the ``os.exec*``, ``os.spawn*``
and ``os.posix_spawn*`` families start processes without it; their ``l``/``le``/``lp``
forms call the ``v`` forms patched here. uvloop starts asyncio's subprocesses through libuv,
without ``Popen``: its loop's ``subprocess_shell`` and ``subprocess_exec`` are patched too.
"""

from __future__ import annotations

import os
from typing import Any

from rasp.context import current
from rasp.guard import Sink, check_command, contained
from rasp.sinks import Patch
from rasp.sinks._calls import outermost
from rasp.sinks._wrapper import Guarded

__all__ = ["PATCHES"]

_SKIP = ("subprocess", "asyncio", "os")
_SHELL = 8  # Popen(args, bufsize, executable, stdin, stdout, stderr, preexec_fn,
_EXECUTABLE = 2  #   close_fds, shell, ...)


def _popen(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    command = args[0] if args else kwargs.get("args")
    shell = kwargs.get("shell", args[_SHELL] if len(args) > _SHELL else False)
    executable = kwargs.get("executable", args[_EXECUTABLE] if len(args) > _EXECUTABLE else None)
    if shell:
        if isinstance(command, (list, tuple)):
            # Popen(["cmd", "$0", "$1"], shell=True): the first item is the shell line.
            return command[0] if command else None
        return command
    if isinstance(command, (str, bytes, os.PathLike)):
        command = [command]  # a program without arguments
    elif not isinstance(command, (list, tuple)):
        return None  # an iterator is Popen's to consume, not ours
    if executable is not None:
        return [executable, *command[1:]]
    return list(command)


def _program(path_position: int, argv_position: int) -> Any:
    """Argument list of ``os.execv(path, argv)``-like calls, with ``path`` as argv[0]."""

    def extract(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
        if len(args) <= max(path_position, argv_position):
            return None
        argv = args[argv_position]
        if not isinstance(argv, (list, tuple)):
            return None
        return [args[path_position], *argv[1:]]

    return extract


def _system(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    return args[0] if args else kwargs.get("command")


def _patch(module: str, attribute: str, extract: Any) -> Patch:
    sink = Sink(f"{module}.{attribute}".replace(".__init__", ""), None, skip_modules=_SKIP)
    return Patch(module, attribute, outermost(check_command, sink, extract))


def _uvloop_shell(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    # Loop.subprocess_shell(protocol_factory, cmd, *, shell=True, ...)
    return args[1] if len(args) > 1 else kwargs.get("cmd")


def _uvloop_exec(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    # Loop.subprocess_exec(protocol_factory, program, *args, executable=None, ...)
    if len(args) < 2:
        return None
    program = kwargs.get("executable") or args[1]
    return [program, *args[2:]]


def _patch_uvloop(attribute: str, extract: Any) -> Patch:
    sink = Sink(f"uvloop.Loop.{attribute}", None, skip_modules=(*_SKIP, "uvloop"))

    async def guarded(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        context = current()
        if context is not None:
            command = contained("uvloop_process", extract, args, kwargs)
            if command is not None:
                check_command(context, command, sink)
        return await wrapped(*args, **kwargs)

    return Patch("uvloop", f"Loop.{attribute}", lambda original: Guarded(original, guarded))


PATCHES = (
    _patch("subprocess", "Popen.__init__", _popen),
    _patch("os", "system", _system),
    _patch("os", "execv", _program(0, 1)),
    _patch("os", "execve", _program(0, 1)),
    _patch("os", "execvp", _program(0, 1)),
    _patch("os", "execvpe", _program(0, 1)),
    _patch("os", "spawnv", _program(1, 2)),
    _patch("os", "spawnve", _program(1, 2)),
    _patch("os", "spawnvp", _program(1, 2)),
    _patch("os", "spawnvpe", _program(1, 2)),
    _patch("os", "posix_spawn", _program(0, 1)),
    _patch("os", "posix_spawnp", _program(0, 1)),
    _patch_uvloop("subprocess_shell", _uvloop_shell),
    _patch_uvloop("subprocess_exec", _uvloop_exec),
)
