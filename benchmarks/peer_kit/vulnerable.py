"""The accuracy cases' endpoints: careless and careful sink calls, with a ground-truth oracle.

Framework-agnostic and standard library only: the app servers of every agent's virtualenv
import it. ``handle(family, context, value, ...)`` makes one sink call the way an app does
(``CONTEXTS`` names them; ``safe_*`` contexts are the careful twins) and answers

  ``{"reached": bool, "exploited": bool | None, "detail": str}``

``reached`` is what really happened, seen from outside the agents: SQLite compiled or ran
the statement (its authorizer or trace callback fired), a process was started, a file was
opened, a socket connected (the last three through an audit hook). ``exploited`` is the
oracle, computed only with ``oracle=True`` (no agent loaded) and judged by effect alone,
never by a lexer:

- SQL: the statement ran and its rows (or, for writes, the whole database afterwards)
  differ from those of its parameterized twin, or it touched a table, column or function
  the twin did not;
- shell: the stub commands the line ran (their argv, logged by ``bin/`` stubs under the
  ``PATH`` the app passes) differ from those of the line with the value ``shlex.quote``d;
- path: a file outside ``files/`` was opened (its real path);
- SSRF: the answer carries the canary's marker and came from an address the app did not
  choose (the canary stands for an internal service).

An agent's exception always propagates (the server turns it into 403/500); only the
libraries' own errors are caught. The first ``handle`` call installs a process-wide audit
hook (it records and guards only inside ``handle``): it refuses any name lookup but
``localhost`` and IP literals, and any connection off loopback, so no case can leave the
machine. Keep accuracy servers apart from the ones whose speed is measured.
"""

from __future__ import annotations

import http.client
import os
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peer_kit.ground_truth import LOCAL, OffMachine, Seen, caught, install, local_address, watching
from peer_kit.ground_truth import last_reached as last_reached  # the cases' public API
from peer_kit.sandbox import SECRET_MARKER as SECRET_MARKER
from peer_kit.sandbox import prepare as prepare

CANARY_MARKER = "CANARY-7f3a"
SHELL_TIMEOUT = 5.0
HTTP_TIMEOUT = 3.0
DEAD_BACKEND = "http://127.0.0.1:9"  # the proxy context's own backend: nothing listens

CONTEXTS: dict[str, tuple[str, ...]] = {
    "sql": ("str", "like", "num", "num_and", "order", "login", "update", "script",
            "safe_bound", "safe_like"),
    "shell": ("ping", "convert_sq", "grep_dq", "git_author", "tar_system", "sh_c",
              "safe_argv", "safe_quote"),
    "path": ("join", "concat", "txt", "unquote", "pathlib", "stripped", "normpath",
             "safe_basename", "safe_resolve"),
    "ssrf": ("url", "host", "host_port", "webhook", "proxy_path", "safe_query", "safe_path"),
}  # fmt: skip

Result = dict[str, Any]


# --- SQL ---------------------------------------------------------------------------------

Twin = Callable[[str], tuple[str, tuple[str, ...]]]


def _bound(sql: str) -> Twin:
    return lambda value: (sql, (value,))


def _identifier(sql: str) -> Twin:
    return lambda value: (sql.replace("{v}", '"' + value.replace('"', '""') + '"'), ())


def _doubled(sql: str) -> Twin:
    return lambda value: (sql.replace("{v}", value.replace("'", "''")), ())


_P = "SELECT id, name, price FROM products"
# context -> (vulnerable template, parameterized twin, writes: runs on a copy, read back)
_SQL: dict[str, tuple[str, Twin, bool]] = {
    "str": (f"{_P} WHERE name = '{{v}}'", _bound(f"{_P} WHERE name = ?"), False),
    "like": (f"{_P} WHERE name LIKE '%{{v}}%' AND category != 'hidden' ORDER BY id",
             _bound(f"{_P} WHERE name LIKE '%' || ? || '%' AND category != 'hidden' ORDER BY id"),
             False),
    "num": (f"{_P} WHERE id = {{v}}", _bound(f"{_P} WHERE id = ?"), False),
    "num_and": (f"{_P} WHERE id = {{v}} AND category != 'hidden'",
                _bound(f"{_P} WHERE id = ? AND category != 'hidden'"), False),
    "order": (f"{_P} WHERE category = 'chairs' ORDER BY {{v}}",
              _identifier(f"{_P} WHERE category = 'chairs' ORDER BY {{v}}"), False),
    "login": ("SELECT id, name FROM users WHERE name = '{v}' AND secret = 'no-such-secret'",
              _bound("SELECT id, name FROM users WHERE name = ? AND secret = 'no-such-secret'"),
              False),
    "update": ("UPDATE products SET note = '{v}' WHERE id = 3",
               _bound("UPDATE products SET note = ? WHERE id = 3"), True),
    "script": ("INSERT INTO feedback (body) VALUES ('{v}');",
               _doubled("INSERT INTO feedback (body) VALUES ('{v}');"), True),
}  # fmt: skip
_SQL_SAFE: dict[str, tuple[str, bool]] = {
    "safe_bound": (f"{_P} WHERE name = ?", False),
    "safe_like": (f"{_P} WHERE name LIKE '%' || ? || '%' ORDER BY id", False),
}


@dataclass
class _SqlRun:
    error: str = ""
    rows: list[Any] = field(default_factory=list)
    touched: set[tuple[int, str | None, str | None]] = field(default_factory=set)


def _sql(
    db: Path, sql: str, params: tuple[str, ...], *, writes: bool, script: bool, seen: Seen
) -> _SqlRun:
    run = _SqlRun()

    def authorize(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
        seen.compiled = True
        run.touched.add((action, arg1, arg2))
        return sqlite3.SQLITE_OK

    def traced(_statement: str) -> None:
        seen.compiled = True

    if writes:  # a private copy: the attack may write, and the file is shared
        connection = sqlite3.connect(":memory:")
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as source:
            source.backup(connection)
    else:
        connection = sqlite3.connect(db)
    with closing(connection):
        connection.set_authorizer(authorize)
        connection.set_trace_callback(traced)
        try:
            if script:
                connection.executescript(sql)
            else:
                run.rows = connection.execute(sql, params).fetchall()
        except (sqlite3.Error, sqlite3.Warning) as error:
            run.error = caught(error)
        connection.set_authorizer(None)
        connection.set_trace_callback(None)
        if writes and not run.error:
            run.rows = list(connection.iterdump())
    return run


def _sql_case(context: str, value: str, sandbox: Path, oracle: bool, seen: Seen) -> Result:
    db = sandbox / "cases.db"
    if context in _SQL_SAFE:
        sql, writes = _SQL_SAFE[context]
        run = _sql(db, sql, (value,), writes=writes, script=False, seen=seen)
        return _result(seen, False if oracle else None, run.error or f"{len(run.rows)} rows")
    template, twin, writes = _SQL[context]
    script = context == "script"
    run = _sql(db, template.replace("{v}", value), (), writes=writes, script=script, seen=seen)
    detail = run.error or f"{len(run.rows)} rows"
    if not oracle:
        return _result(seen, None, detail)
    twin_sql, params = twin(value)
    control = _sql(db, twin_sql, params, writes=writes, script=script, seen=Seen())
    extra = run.touched - control.touched
    exploited = not run.error and (run.rows != control.rows or bool(extra))
    if exploited and extra:
        detail += "; also touched " + ", ".join(sorted({str(a or b) for _, a, b in extra}))
    return _result(seen, exploited, detail)


# --- shell -------------------------------------------------------------------------------

# context -> (vulnerable line, its twin with {q}: the value through shlex.quote)
_SHELL: dict[str, tuple[str, str]] = {
    "ping": ("ping -c 1 {v}", "ping -c 1 {q}"),
    "convert_sq": ("convert '{v}' -resize 64x64 thumb.png", "convert {q} -resize 64x64 thumb.png"),
    "grep_dq": ('grep -i "{v}" catalog.txt', "grep -i {q} catalog.txt"),
    "git_author": ("git log --author={v} --oneline", "git log --author={q} --oneline"),
    "tar_system": ("tar czf backup-{v}.tgz data", "tar czf backup-{q}.tgz data"),
    "sh_c": ("nslookup {v} 127.0.0.1", "nslookup {q} 127.0.0.1"),
    "safe_quote": ("ping -c 1 {q}", "ping -c 1 {q}"),
    "safe_argv": ("ping -c 1 {q}", "ping -c 1 {q}"),  # runs ["ping", "-c", "1", value]
}


def _shell_line(template: str, value: str) -> str:
    return template.replace("{v}", value).replace("{q}", shlex.quote(value))


def _spawn(context: str, line: str, value: str, work: Path, bin_dir: Path) -> tuple[str, str]:
    """Run the app's command in ``work``; answer (error text, stub log)."""
    log = work / "stub.log"
    env = {"PATH": str(bin_dir), "STUB_LOG": str(log)}
    error = ""
    try:
        if context == "tar_system":
            # os.system has no env= nor cwd=: the app's own prefix sets them.
            prefix = (f"cd {shlex.quote(str(work))} && exec >/dev/null 2>&1 && "
                      f"PATH={shlex.quote(env['PATH'])} STUB_LOG={shlex.quote(env['STUB_LOG'])} "
                      "&& export PATH STUB_LOG && ")  # fmt: skip
            status = os.system(prefix + line)
            error = f"exit {os.waitstatus_to_exitcode(status)}" if status else ""
        else:
            if context == "safe_argv":
                command: str | list[str] = ["ping", "-c", "1", value]
            elif context == "sh_c":
                command = ["/bin/sh", "-c", line]
            else:
                command = line
            shell = isinstance(command, str)
            subprocess.run(command, shell=shell, env=env, cwd=work, capture_output=True,
                           timeout=SHELL_TIMEOUT, check=True)  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as failure:
        error = caught(failure)
    try:
        return error, log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return error, ""


def _shell_case(context: str, value: str, sandbox: Path, oracle: bool, seen: Seen) -> Result:
    template, twin = _SHELL[context]
    bin_dir = sandbox / "bin"
    work = Path(tempfile.mkdtemp(prefix="case-", dir=sandbox / "work"))
    try:
        with watching(seen):
            error, log = _spawn(context, _shell_line(template, value), value, work, bin_dir)
        commands = log.count("\x1e")
        detail = error or f"{commands} commands"
        if not oracle:
            return _result(seen, None, detail)
        if context.startswith("safe_"):
            return _result(seen, False, detail)
        (work / "stub.log").unlink(missing_ok=True)
        _, control = _spawn(context, _shell_line(twin, value), value, work, bin_dir)
        exploited = commands > 0 and log != control
        if exploited:
            ran = [entry.split("\x1f")[0] for entry in log.split("\x1e") if entry]
            detail += ": " + " ".join(ran)[:120]
        return _result(seen, exploited, detail)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- path --------------------------------------------------------------------------------


def _path_target(context: str, value: str, base: Path) -> Path | str | None:
    root = str(base)
    if context == "join":
        return os.path.join(root, value)
    if context == "concat":
        return root + "/" + value
    if context == "txt":
        return f"{root}/{value}.txt"
    if context == "unquote":
        return os.path.join(root, urllib.parse.unquote(value))
    if context == "pathlib":
        return base / value
    if context == "normpath":  # tidied, never checked
        return os.path.normpath(os.path.join(root, value))
    if context == "stripped":
        return os.path.join(root, value.replace("../", ""))
    if context == "safe_basename":
        return os.path.join(root, os.path.basename(value))
    if context == "safe_resolve":
        target = (base / value).resolve()
        return target if target.is_relative_to(base.resolve()) else None
    raise ValueError(f"no path context {context!r}")


def _path_case(context: str, value: str, sandbox: Path, oracle: bool, seen: Seen) -> Result:
    base = sandbox / "files"
    try:
        target = _path_target(context, value, base)
    except (OSError, ValueError) as refused:  # Path.resolve on a NUL byte, a loop
        return _result(seen, False if oracle else None, caught(refused))
    if target is None:
        return _result(seen, False if oracle else None, "refused by the app: outside files/")
    data, error = b"", ""
    seen.target = os.fsdecode(target)
    with watching(seen):
        try:
            if isinstance(target, Path):
                data = target.read_bytes()
            else:
                with open(target, "rb") as file:
                    data = file.read(65536)
        except (OSError, ValueError) as failure:
            error = caught(failure)
    detail = error or f"read {len(data)} bytes"
    exploited: bool | None = None
    if oracle and error:
        exploited = False
    elif oracle:
        real = os.path.realpath(target)
        inside = os.path.commonpath([real, os.path.realpath(base)]) == os.path.realpath(base)
        exploited = not inside
        if exploited:
            detail += f" from {real[:80]}"
    return _result(seen, exploited, detail)


# --- SSRF --------------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy


def _urllib(url: str) -> str:
    with _OPENER.open(url, timeout=HTTP_TIMEOUT) as answer:
        return str(answer.read(65536).decode("utf-8", "replace"))


def _http_client(url: str) -> str:
    """A webhook sender that parses the URL itself and talks to its host with http.client."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise ValueError("the URL names no host")
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=HTTP_TIMEOUT)
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        return connection.getresponse().read(65536).decode("utf-8", "replace")
    finally:
        connection.close()


def _ssrf_call(context: str, value: str, canary: urllib.parse.SplitResult) -> tuple[str, str]:
    """(body, the address the app meant to reach or "" when the user names it)."""
    if context == "url":
        return _urllib(value), ""
    if context == "host":
        return _urllib(f"http://{value}/status"), ""
    if context == "host_port":
        return _urllib(f"http://{value}:{canary.port}/status"), ""
    if context == "webhook":
        return _http_client(value), ""
    if context == "proxy_path":
        return _http_client(DEAD_BACKEND + value), "127.0.0.1:9"
    own = f"{canary.hostname}:{canary.port}"
    if context == "safe_query":
        base = urllib.parse.urlunsplit((*canary[:2], "", "", ""))
        return _urllib(f"{base}/search?q={urllib.parse.quote(value)}"), own
    if context == "safe_path":
        base = urllib.parse.urlunsplit((*canary[:2], "", "", ""))
        return _http_client(f"{base}/items/{urllib.parse.quote(value, safe='')}"), own
    raise ValueError(f"no ssrf context {context!r}")


def _same_address(connected: tuple[str, int], own: str) -> bool:
    host, _, port = own.rpartition(":")
    return connected[1] == int(port) and local_address(connected[0]) and local_address(host)


def _ssrf_case(context: str, value: str, canary_url: str, oracle: bool, seen: Seen) -> Result:
    canary = urllib.parse.urlsplit(canary_url)
    body, own, error = "", "", ""
    with watching(seen):
        try:
            body, own = _ssrf_call(context, value, canary)
        except (OSError, ValueError, http.client.HTTPException, OffMachine) as failure:
            error = caught(failure)  # URLError and socket errors are OSErrors
    marked = CANARY_MARKER in body
    detail = error or f"answer of {len(body)} chars" + (" with the canary marker" if marked else "")
    exploited: bool | None = None
    if oracle:
        elsewhere = bool(seen.connected) and not (own and _same_address(seen.connected[-1], own))
        exploited = marked and elsewhere and not context.startswith("safe_")
    return _result(seen, exploited, detail)


# --- entry point -------------------------------------------------------------------------


def _result(seen: Seen, exploited: bool | None, detail: str) -> Result:
    return {"reached": seen.reached, "exploited": exploited, "detail": detail}


def handle(
    family: str, context: str, value: str, *, sandbox: Path, canary_url: str, oracle: bool
) -> Result:
    """Make the sink call of ``family``/``context`` with the user's ``value``.

    ``oracle=True`` also runs the careful twin and judges the effect (call it only when no
    agent is loaded: the twin's calls would be judged too). An agent's exception propagates;
    ``last_reached()`` then tells whether the sink ran before it.
    """
    if context not in CONTEXTS.get(family, ()):
        raise ValueError(f"no context {context!r} in family {family!r}")
    install()
    seen = LOCAL.last = Seen(family=family)
    if family == "sql":
        return _sql_case(context, value, sandbox, oracle, seen)
    if family == "shell":
        return _shell_case(context, value, sandbox, oracle, seen)
    if family == "path":
        return _path_case(context, value, sandbox, oracle, seen)
    return _ssrf_case(context, value, canary_url, oracle, seen)
