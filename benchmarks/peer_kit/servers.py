"""The agents' virtualenvs and app servers, and the loopback service, for ``peers.py``.

Each agent runs in a virtualenv of its own, made on first use with the same pinned web
stack; ``none`` shares ``rasp``'s and never imports it. Servers are started per scenario on
free loopback ports and checked to have loaded their agent before anything is measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peer_kit import shop

HERE = Path(__file__).resolve().parents[1]
"""The benchmarks folder: the servers import ``peer_kit`` from it."""
ROOT = HERE.parent
AGENTS = ("none", "rasp", "zen", "ddtrace")
SERVERS = ("flask+gunicorn", "starlette+uvicorn")
DBS = ("sqlite", "postgresql")
WEB_STACK = (
    "Flask==3.1.3",
    "Werkzeug==3.1.9",
    "gunicorn==27.0.1",
    "starlette==1.10.0",
    "uvicorn==0.54.0",
    "uvloop==0.23.0",
    "httptools==0.9.0",
    "anyio==4.16.0",
    "psycopg[binary]==3.3.9",
)
PEERS = {"zen": "aikido-zen==1.2.37", "ddtrace": "ddtrace==4.16.0"}
DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
SESSION_COOKIE = f"session={shop.SESSION}; theme=dark; consent=1"


# --- progress ----------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on a terminal, a line per tenth of the work elsewhere."""

    def __init__(self, title: str, total: int) -> None:
        self.title, self.total, self.done = title, max(1, total), 0
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self._last_tenth = -1
        self._lock = threading.Lock()

    def step(self, note: str = "") -> None:
        with self._lock:
            self._step(note)

    def _step(self, note: str) -> None:
        self.done += 1
        fraction = self.done / self.total
        elapsed = time.monotonic() - self.started
        eta = elapsed / fraction - elapsed if fraction else 0.0
        bar = "#" * int(fraction * 30)
        line = f"{self.title} [{bar:<30}] {self.done}/{self.total} {note} (eta {eta:.0f} s)"
        if self.tty:
            sys.stderr.write("\r\033[K" + line[: shutil.get_terminal_size().columns - 1])
            if self.done >= self.total:
                sys.stderr.write("\n")
        elif int(fraction * 10) != self._last_tenth or self.done >= self.total:
            self._last_tenth = int(fraction * 10)
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


# --- virtualenvs -------------------------------------------------------------------------------


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "rasp-bench"
    return Path(os.environ.get("RASP_BENCH_CACHE", default))


class SetupError(RuntimeError):
    """The run cannot start: what is missing, in words (``peers.py`` exits 2 with it)."""


def venv_for(agent: str) -> Path:
    """The agent's virtualenv, made on first use. ``none`` shares ``rasp``'s and never loads it."""
    name = "rasp" if agent == "none" else agent
    wanted = [*WEB_STACK, PEERS[name]] if name in PEERS else [*WEB_STACK, "-e", str(ROOT)]
    digest = hashlib.sha1("\n".join([sys.version, *wanted]).encode()).hexdigest()[:10]
    venv = cache_dir() / f"{name}-{digest}"
    if not (venv / ".ready").exists():
        say(f"creating the {name} virtualenv in {venv} (once)")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        if subprocess.run([*pip, *wanted]).returncode != 0:
            raise SetupError(f"pip could not install {' '.join(wanted)} for agent {agent!r}")
        (venv / ".ready").touch()
    return venv


def version_of(agent: str) -> str:
    if agent == "none":
        return "no agent"
    distribution = {"rasp": "confine-rasp", "zen": "aikido-zen", "ddtrace": "ddtrace"}[agent]
    python = venv_for(agent) / "bin" / "python"
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    version = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    label = {"rasp": "confine-rasp (this project)", "zen": "Aikido Zen", "ddtrace": "ddtrace"}
    return f"{label[agent]} {version.stdout.strip()}"


def ddtrace_rules(workdir: Path) -> Path:
    """ddtrace's own rule file, with ``block`` added to its exploit-prevention rules."""
    python = venv_for("ddtrace") / "bin" / "python"
    code = "import ddtrace.appsec, pathlib; print(pathlib.Path(ddtrace.appsec.__file__).parent)"
    folder = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    rules = json.loads((Path(folder.stdout.strip()) / "rules.json").read_text())
    for rule in rules["rules"]:
        if rule["id"].startswith("rasp-"):
            rule["on_match"] = sorted({*rule.get("on_match", ()), "block"})
    path = workdir / "ddtrace-rules.json"
    path.write_text(json.dumps(rules))
    return path


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Bench:
    """What every server of the run shares: the sandbox, the loopback service, the rules."""

    workdir: Path
    service_port: int
    ddtrace_rules: Path | None
    prefix: str

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"


@dataclass
class AppServer:
    agent: str
    server: str
    db: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def environment(agent: str, db: str, bench: Bench) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        BENCH_AGENT=agent,
        BENCH_DB=db,
        BENCH_DSN=DSN,
        BENCH_PREFIX=bench.prefix,
        BENCH_SANDBOX=str(bench.workdir / "sandbox"),
        BENCH_SERVICE=bench.service_url,
        PYTHONDONTWRITEBYTECODE="1",
    )
    unused = f"http://127.0.0.1:{free_port()}"
    if agent == "rasp":
        env.update(RASP_MODE="block")
    elif agent == "zen":
        env.update(AIKIDO_BLOCK="true", AIKIDO_ENDPOINT=unused, AIKIDO_REALTIME_ENDPOINT=unused)
    elif agent == "ddtrace":
        assert bench.ddtrace_rules is not None
        env.update(
            DD_APPSEC_ENABLED="true",
            DD_APPSEC_RASP_ENABLED="true",
            DD_APPSEC_RULES=str(bench.ddtrace_rules),
            DD_TRACE_AGENT_URL=unused,
            DD_DOGSTATSD_URL=f"udp://127.0.0.1:{free_port()}",
        )
    return env


def start(agent: str, server: str, db: str, bench: Bench) -> AppServer:
    port = free_port()
    bin_dir = venv_for(agent) / "bin"
    if server == "flask+gunicorn":
        command = [
            str(bin_dir / "gunicorn"),
            f"--pythonpath={HERE}",
            "--workers=2",
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
            "peer_kit.app:flask_app",
        ]
    else:
        command = [
            str(bin_dir / "uvicorn"),
            f"--app-dir={HERE}",
            "--workers=2",
            "--host=127.0.0.1",
            f"--port={port}",
            "--no-access-log",
            "--log-level=warning",
            "peer_kit.app:starlette_app",
        ]
    log = bench.workdir / f"{agent}-{server}-{db}.log".replace("+", "-")
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=environment(agent, db, bench),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=bench.workdir,
        )
    return AppServer(agent, server, db, port, process, log)


def request(url: str, body: Any = None, timeout: float = 30) -> tuple[int, dict[str, Any] | None]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Cookie": SESSION_COOKIE}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=data, headers=headers), timeout=timeout
        ) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def wait_ready(app: AppServer, deadline: float = 60) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if app.process.poll() is not None:
            raise RuntimeError(f"{app.agent} {app.server} exited:\n{app.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            status, info = request(f"{app.url}/agent", timeout=2)
            if status == 200 and info is not None:
                expected = {"none": [], "rasp": ["rasp"], "zen": ["aikido_zen"]}
                loaded = info["loaded"]
                if app.agent == "ddtrace" and loaded != ["ddtrace"]:
                    raise RuntimeError(f"ddtrace server loaded {loaded}")
                if app.agent != "ddtrace" and loaded != expected[app.agent]:
                    raise RuntimeError(f"{app.agent} server loaded {loaded}")
                return
        time.sleep(0.2)
    raise RuntimeError(f"{app.agent} {app.server} not ready:\n{app.log.read_text()[-3000:]}")


@contextlib.contextmanager
def servers(server: str, db: str, agents: Sequence[str], bench: Bench) -> Iterator[list[AppServer]]:
    apps = [start(agent, server, db, bench) for agent in agents]
    try:
        for app in apps:
            wait_ready(app)
        yield apps
    finally:
        for app in apps:
            app.stop()


@contextlib.contextmanager
def loopback_service(port: int) -> Iterator[None]:
    process = subprocess.Popen([sys.executable, str(HERE / "peer_kit" / "shop.py"), str(port)])
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait()
