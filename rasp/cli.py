"""The ``rasp`` command: run a program protected, check a configuration.

Exit status: 0 on success; 2 for a usage error or an invalid setting (the message names
it); 127 when the program to run is not found; otherwise ``rasp run`` *is* the program
(``exec``), so its status and signals are the program's own. A program whose agent failed
to start runs unprotected, unless ``RASP_FAIL_CLOSED`` is set: then it stops with status 3.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from rasp import __version__
from rasp.config import _PARSERS, ENV_PREFIX, Config, ConfigError

__all__ = ["main"]

EPILOG = """\
examples:
  rasp run -- gunicorn app:app -w 4            protect a gunicorn app, no code change
  rasp run --mode monitor -- uvicorn app:app   alert without blocking
  rasp run -- python manage.py runserver       any Python command
  RASP_METRICS_PATH=/metrics rasp run -- flask --app shop run
  rasp check                                   the effective settings and guarded libraries

exit status:
  0 success; 2 usage error or invalid setting; 127 program not found;
  under "run", the program's own status (3 if the agent failed and RASP_FAIL_CLOSED is set)
"""

# The libraries the agent guards or serves through, by distribution name, and what it does.
LIBRARIES = (
    ("flask", "request context (Flask.wsgi_app)"),
    ("django", "request context (WSGI and ASGI handlers), route patterns"),
    ("starlette", "request context (Starlette.__call__), route templates"),
    ("fastapi", "request context (through Starlette)"),
    ("gunicorn", "server: rasp.gunicorn config for multiprocess metrics"),
    ("uvicorn", "server"),
    ("psycopg", "SQL: cursors and connections"),
    ("psycopg2-binary", "SQL: cursors (psycopg2)"),
    ("psycopg2", "SQL: cursors"),
    ("asyncpg", "SQL: connections and prepared statements"),
    ("PyMySQL", "SQL: cursors"),
    ("mysqlclient", "SQL: cursors (MySQLdb)"),
    ("aiosqlite", "SQL: through sqlite3"),
    ("aiomysql", "SQL: cursors"),
    ("SQLAlchemy", "SQL: through the drivers above"),
    ("requests", "SSRF: resolution and redirects"),
    ("urllib3", "SSRF: resolution and redirects"),
    ("httpx", "SSRF: resolution and redirects"),
    ("aiohttp", "SSRF: resolution and redirects"),
    ("uvloop", "SSRF and processes: its resolver and subprocesses"),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rasp",
        description="Runtime application self-protection for Python web apps.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rasp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run a program with protection installed before it imports anything",
        description="Run COMMAND with the agent started in every Python process it runs "
        "(a sitecustomize put first on PYTHONPATH). Settings come from RASP_* variables, "
        "[tool.rasp] in pyproject.toml, and these options.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--mode", choices=("block", "monitor", "off"), help="sets RASP_MODE")
    run.add_argument("--metrics-path", metavar="PATH", help="sets RASP_METRICS_PATH")
    run.add_argument("--metrics-port", metavar="PORT", help="sets RASP_METRICS_PORT")
    run.add_argument("program", nargs=argparse.REMAINDER, help="the command, after --")
    commands.add_parser(
        "check",
        help="print the effective settings and the guarded libraries; exit 2 if invalid",
        description="Print every setting with its value and where it came from, and the "
        "installed libraries the agent guards, with their versions.",
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        program = list(args.program)
        if program[:1] == ["--"]:
            program = program[1:]
        if not program:
            run.error("nothing to run: rasp run -- COMMAND [ARGS...]")
        return _run(program, args)
    if args.command == "check":
        return _check()
    parser.print_help()
    return 2


def _run(program: list[str], args: argparse.Namespace) -> int:
    env = dict(os.environ)
    for option, variable in (("mode", "MODE"), ("metrics_path", "METRICS_PATH"),
                             ("metrics_port", "METRICS_PORT")):  # fmt: skip
        value = getattr(args, option)
        if value is not None:
            env[ENV_PREFIX + variable] = value
    try:
        Config.load(environ=env)  # a bad setting stops here, not in every process
    except ConfigError as error:
        print(f"rasp: {error}", file=sys.stderr)
        return 2
    bootstrap = str(Path(__file__).resolve().parent / "_bootstrap")
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = bootstrap + (os.pathsep + existing if existing else "")
    env["RASP_RUN"] = "1"
    executable = shutil.which(program[0], path=env.get("PATH"))
    if executable is None:
        print(f"rasp: command not found: {program[0]}", file=sys.stderr)
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(executable, program, env)  # the program replaces this process


def _check() -> int:
    try:
        config = Config.load()
    except ConfigError as error:
        print(f"rasp: {error}", file=sys.stderr)
        return 2
    print(f"rasp {__version__} (Python {sys.version.split()[0]})\n")
    print("settings:")
    for key in _PARSERS:
        value = getattr(config, key)
        shown = value.value if hasattr(value, "value") else value
        if isinstance(shown, tuple):
            shown = ", ".join(shown) if shown else "(none)"
        elif shown is None:
            shown = "off"
        print(f"  {key:<17} {shown!s:<40} ({config.origins.get(key, 'default')})")
    print("\nlibraries:")
    print(f"  {'sqlite3':<17} {sqlite3.sqlite_version:<12} SQL: connections and cursors")
    for distribution, role in LIBRARIES:
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        print(f"  {distribution:<17} {version:<12} {role}")
    print("  (always guarded: subprocess/os process calls, file calls, socket resolution)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
