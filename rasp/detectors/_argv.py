"""Argument lists: which program runs, and which argument a shell runs as code (``sh -c``,
behind ``env``/``sudo``/``timeout``/...)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from rasp.detectors import as_text

SHELLS = frozenset(
    "sh bash dash zsh ksh ksh93 mksh pdksh ash hush yash posh rbash fish csh tcsh".split()
)
_MULTICALL = frozenset(("busybox", "toybox"))
# Programs that run the rest of their arguments as a command: the options that take a
# value, and how many operands come before the command.
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "env": (frozenset(("-u", "--unset", "-C", "--chdir", "-S", "--split-string")), 0),
    "sudo": (frozenset(("-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T")), 0),
    "doas": (frozenset(("-u", "-C")), 0),
    "nice": (frozenset(("-n", "--adjustment")), 0),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "command": (frozenset(), 0),
    "time": (frozenset(("-f", "--format", "-o", "--output")), 0),
    "timeout": (frozenset(("-s", "--signal", "-k", "--kill-after")), 1),
    "stdbuf": (frozenset(("-i", "-o", "-e")), 0),
    "ionice": (frozenset(("-c", "-n", "-p", "-P", "-u")), 0),
    "chroot": (frozenset(("--userspec", "--groups")), 1),
    "xargs": (frozenset(("-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s")), 0),
}
_MAX_WRAPPERS = 8
_VALUE_FLAGS = frozenset("oO")  # sh -o pipefail, bash -O extglob
_LONG_WITH_VALUE = frozenset(("--rcfile", "--init-file", "--init-command"))


def split(command: object) -> tuple[str | None, list[str | None]]:
    """A shell line, or the items of an argument list as text (``None`` for an item that is
    not text); neither for a value that is not a command."""
    if isinstance(command, (str, bytes, bytearray, memoryview)):
        return as_text(command), []
    try:
        if isinstance(command, os.PathLike):
            return None, [as_text(os.fspath(command))]
        if not isinstance(command, Sequence):
            return None, []
        return None, [as_text(os.fspath(a) if isinstance(a, os.PathLike) else a) for a in command]
    except Exception:  # a PathLike or a sequence of the app's own that misbehaves
        return None, []


def _name(program: str | None) -> str:
    if program is None:
        return ""
    return program.rpartition("/")[2]


def programs(argv: list[str | None]) -> list[int]:
    """Indexes of argv[0] and of each program that a wrapper (``env``, ``sudo``, ...) runs."""
    found = [0]
    index = 0
    for _ in range(_MAX_WRAPPERS):
        name = _name(argv[index])
        if name in _MULTICALL and index + 1 < len(argv):
            index += 1  # busybox sh -c ...
            found.append(index)
            continue
        spec = _WRAPPERS.get(name)
        if spec is None:
            break
        with_value, operands = spec
        i = index + 1
        while i < len(argv):
            arg = argv[i]
            if arg is None:
                return found
            if arg == "--":
                i += 1
                break
            if name == "env" and "=" in arg and not arg.startswith("-"):
                i += 1  # env NAME=value ...
            elif arg.startswith("-") and len(arg) > 1:
                i += 2 if arg in with_value else 1
            else:
                break
        i += operands
        if i >= len(argv):
            break
        index = i
        found.append(index)
    return found


def shell_strings(argv: list[str | None]) -> list[str]:
    """The ``-c`` string of the first shell (or ``su``) that ``argv`` runs, if any."""
    for index in programs(argv):
        name = _name(argv[index])
        if name == "su":
            line = _su_command(argv, index)
        elif name in SHELLS:
            line = _c_string(argv, index, fish=name == "fish")
        else:
            continue
        return [] if line is None else [line]
    return []


def _c_string(argv: list[str | None], index: int, *, fish: bool) -> str | None:
    """The command string of ``sh [options] -c string [name [args...]]``, if any."""
    has_c = False
    i = index + 1
    while i < len(argv):
        arg = argv[i]
        if arg is None:
            return None
        if arg in ("--", "-"):
            i += 1
            break
        if fish and arg.startswith("--command="):
            return arg.partition("=")[2]
        if arg.startswith("--"):
            if fish and arg == "--command":
                return argv[i + 1] if i + 1 < len(argv) else None
            i += 2 if arg in _LONG_WITH_VALUE else 1
        elif len(arg) > 1 and arg[0] in "-+":
            cluster = arg[1:]
            has_c = has_c or (arg[0] == "-" and "c" in cluster)
            i += 1 + sum(1 for flag in cluster if flag in _VALUE_FLAGS)
        else:
            break
    return argv[i] if has_c and i < len(argv) else None


def _su_command(argv: list[str | None], index: int) -> str | None:
    """``su [options] -c command [user]`` (``--command=command`` too)."""
    for i in range(index + 1, len(argv) - 1):
        arg = argv[i]
        if arg in ("-c", "--command"):
            return argv[i + 1]
        if arg is not None and arg.startswith("--command="):
            return arg.partition("=")[2]
    return None
