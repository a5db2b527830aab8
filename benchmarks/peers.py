"""This agent side by side with no agent, Aikido Zen and Datadog's ddtrace, in one run.

Three phases, each measured under every agent on the same machine in the same run:

  overhead  Throughput and latency of a realistic route (``POST /order`` in
            ``peer_kit/app.py``: a 50-field JSON body, five SQL queries, a file read, an
            outbound HTTP call to a loopback service) under wrk, for Flask on gunicorn and
            Starlette on uvicorn, each on SQLite and on PostgreSQL. All four servers of a
            scenario run at once; fixed-duration rounds are interleaved with their order
            rotated (none rasp zen ddtrace, rasp zen ddtrace none, ...). Medians of the rounds.
  micro     The cost of one guarded call (sqlite3 and psycopg execute, open(), subprocess,
            getaddrinfo), timed inside a real request whose JSON body holds 0, 20 or 1,000
            inputs: the agent considers every one of them at every call.
  accuracy  The attack and honest corpus of ``peer_kit/corpus.py`` sent over HTTP to the
            vulnerable and safe routes of the Flask app. An attack counts only if it really
            exploits the app with no agent (``peer_kit/vulnerable.py`` judges the effect);
            an agent detects it if the sink was never reached. An honest value that does
            not reach its sink is a false positive.

Each agent runs in its own virtualenv under ``~/.cache/rasp-bench`` (``RASP_BENCH_CACHE``),
made on first use with the same pinned web stack; no peer becomes a dependency of the
project. Peers are configured to block: Zen with ``AIKIDO_BLOCK=true``; ddtrace with AppSec
and RASP on and its own rule file with ``block`` added to the exploit-prevention rules
(what switching blocking on in Datadog's UI does through remote configuration, which needs
an agent; its agent URL points at an unused loopback port).

Run: ``python benchmarks/peers.py`` (about 20 minutes), ``--quick`` (under 2 minutes once
the virtualenvs exist). Writes ``benchmarks/results/peers.json``, the charts
``benchmarks/results/peers_*.png`` and, unless ``--quick``, the tables in
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from peer_kit import shop  # noqa: E402

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
MICRO_OPS = {"sqlite": 2000, "psycopg": 300, "open": 2000, "subprocess": 40, "getaddrinfo": 500}
MICRO_NAMES = {
    "sqlite": "sqlite3 execute",
    "psycopg": "psycopg execute",
    "open": "open()",
    "subprocess": "subprocess.run",
    "getaddrinfo": "getaddrinfo",
}
MICRO_INPUTS = (0, 20, 1000)
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
        subprocess.run([*pip, *wanted], check=True)
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


# --- overhead ----------------------------------------------------------------------------------


def order_body() -> dict[str, Any]:
    """The checkout form a browser posts: 45 fields of what people type, 5 the route reads."""
    body: dict[str, Any] = {
        "q": "oak chair",
        "category": "kitchen",
        "sort": "price",
        "locale": "en",
        "currency": "EUR",
    }
    typed = [
        "Jane O'Neil",
        "12 Rue de l'Église, 2nd floor",
        "jane.oneil+shop@mail.example",
        "+33 6 12 34 56 78",
        "Please leave the parcel at the door (code: 4821#)",
        "75011",
        "Paris",
        "FR",
        "gift wrap: yes; card says 'Happy birthday, Tom & Ana!'",
        "ACME-2024-50%OFF",
    ]
    for i in range(45):
        body[f"field_{i:02d}"] = typed[i % len(typed)]
    return body


ATTACK_BODY = {**order_body(), "q": "x%' OR 1=1 --"}

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Cookie"] = {cookie}
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"
wrk.headers["Accept"] = "application/json"
wrk.headers["Accept-Language"] = "en-US,en;q=0.9"
local template = {body}
local counter = 0
request = function()
  counter = counter + 1
  local body = template:gsub("@N@", tostring(counter))
  return wrk.format(nil, nil, nil, body)
end
"""
"""Every request's body differs (a counter in three fields), as real traffic does: no
agent can answer from a cache keyed by the whole value."""


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk(url: str, seconds: float, script: Path, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if match is None:
            raise RuntimeError(f"wrk printed no {percent}% latency:\n{output}")
        return float(match[1]) * units[match[2]]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if rps is None:
        raise RuntimeError(f"wrk printed no throughput:\n{output}")
    return {
        "rps": float(rps[1]),
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(bad[1]) if bad else 0.0,
        "socket_errors": float(sum(map(int, errors.groups()))) if errors else 0.0,
    }


def rotated(agents: Sequence[str], shift: int) -> list[str]:
    shift %= len(agents)
    return [*agents[shift:], *agents[:shift]]


def check_blocks(apps: Sequence[AppServer]) -> dict[str, str]:
    """Each agent must block an injection into the route, or its figures measure nothing."""
    verdicts = {}
    for app in apps:
        status, _ = request(f"{app.url}/order", ATTACK_BODY)
        honest, _ = request(f"{app.url}/order", order_body())
        if honest != 200:
            log = app.log.read_text()[-3000:]
            raise RuntimeError(f"{app.agent} answered the honest order with {honest}:\n{log}")
        blocked = status != 200
        if blocked == (app.agent == "none"):
            say(f"warning: {app.agent} answered an injection into /order with {status}")
        verdicts[app.agent] = f"{status}"
    return verdicts


def overhead(bench: Bench, args: argparse.Namespace) -> list[dict[str, Any]]:
    script = bench.workdir / "order.lua"
    varied = {**order_body(), "q": "oak chair @N@", "field_00": "Jane O'Neil @N@"}
    body = json.dumps({**varied, "field_04": "+33 6 12 @N@"})
    script.write_text(WRK_SCRIPT.format(body=lua_string(body), cookie=lua_string(SESSION_COOKIE)))
    rows: list[dict[str, Any]] = []
    scenarios = [(s, d) for s in args.servers for d in args.dbs]
    progress = Progress("overhead", len(scenarios) * args.rounds * len(args.agents))
    for server, db in scenarios:
        with servers(server, db, args.agents, bench) as apps:
            verdicts = check_blocks(apps)
            by_agent = {app.agent: app for app in apps}
            for app in apps:  # warm-up: imports, connections, caches
                wrk(f"{app.url}/order", 1 if args.quick else 3, script, args.connections)
            runs: dict[str, list[dict[str, float]]] = {agent: [] for agent in args.agents}
            for round_ in range(args.rounds):
                for agent in rotated(args.agents, round_):
                    url = f"{by_agent[agent].url}/order"
                    runs[agent].append(wrk(url, args.duration, script, args.connections))
                    progress.step(f"{server} {db} round {round_ + 1} {agent}")
            rows.extend(summarize(server, db, runs, verdicts))
    return rows


def summarize(
    server: str, db: str, runs: dict[str, list[dict[str, float]]], verdicts: dict[str, str]
) -> list[dict[str, Any]]:
    rows = []
    base = runs.get("none")
    for agent, measured in runs.items():
        ratios = [m["rps"] / b["rps"] for m, b in zip(measured, base, strict=True)] if base else []
        rows.append(
            {
                "server": server,
                "db": db,
                "agent": agent,
                "rps": statistics.median(m["rps"] for m in measured),
                "p50_ms": statistics.median(m["p50"] for m in measured),
                "p99_ms": statistics.median(m["p99"] for m in measured),
                "ratio": statistics.median(ratios) if ratios else None,
                "rounds": len(measured),
                "errors": sum(m["errors"] + m["socket_errors"] for m in measured),
                "injection_status": verdicts.get(agent),
            }
        )
    return rows


# --- micro -------------------------------------------------------------------------------------


def inputs(count: int) -> dict[str, str]:
    """``count`` varied form fields: words joined by punctuation, none of them in a statement."""
    words = ("amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "haze", "iris")
    joins = (" & ", "-", "'s ", ", ", "/", " (", ": ", "_", "+", "#")
    return {
        f"f{i}": f"{words[i % 9]}{joins[i % 10]}{words[i * 7 % 9]}{joins[i * 3 % 10]}{i}"
        for i in range(count)
    }


def micro(bench: Bench, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    scale = 0.15 if args.quick else 1.0
    rounds = 2 if args.quick else 7
    plan = [(op, n) for op in MICRO_OPS for n in MICRO_INPUTS]
    progress = Progress("micro", len(plan) * rounds)
    with servers("flask+gunicorn", "sqlite", args.agents, bench) as apps:
        for op, count in plan:
            calls = max(10, int(MICRO_OPS[op] * scale))
            body = inputs(count)
            per_agent: dict[str, list[float]] = {app.agent: [] for app in apps}
            for round_ in range(rounds):
                for app in rotated(apps, round_):
                    status, answer = request(f"{app.url}/micro?op={op}&n={calls}", body)
                    if status != 200 or answer is None:
                        raise RuntimeError(f"{app.agent} /micro {op} answered {status}")
                    per_agent[app.agent].append(answer["us"])
                progress.step(f"{op} {count} inputs")
            base = statistics.median(per_agent["none"]) if "none" in per_agent else None
            for agent, samples in per_agent.items():
                us = statistics.median(samples)
                rows.append(
                    {
                        "op": MICRO_NAMES[op],
                        "inputs": count,
                        "agent": agent,
                        "us": us,
                        "added_us": None if base is None else us - base,
                    }
                )
    return rows


# --- accuracy ----------------------------------------------------------------------------------


def accuracy(bench: Bench, args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from peer_kit import corpus

    cases = corpus.CASES
    agents = ["none", *[a for a in args.agents if a != "none"]]
    progress = Progress("accuracy", len(cases) * len(agents))
    outcomes: dict[str, dict[str, dict[str, Any]]] = {agent: {} for agent in agents}
    with servers("flask+gunicorn", "sqlite", agents, bench) as apps:

        def send_all(app: AppServer) -> None:
            for case in cases:
                value = corpus.materialize(case, bench.service_port)
                query = urllib.parse.urlencode({"v": value})
                status, answer = request(f"{app.url}/case/{case.family}/{case.context}?{query}")
                outcomes[app.agent][case.label] = {"status": status, **(answer or {})}
                progress.step(f"{app.agent} {case.family}")

        # One client thread per agent: each case waits on a shell or a socket as much as on
        # the CPU, and the agents' servers are separate processes.
        with concurrent.futures.ThreadPoolExecutor(len(apps)) as pool:
            for future in [pool.submit(send_all, app) for app in apps]:
                future.result()
    return score(cases, outcomes)


def score(
    cases: Sequence[Any], outcomes: dict[str, dict[str, dict[str, Any]]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    baseline = outcomes["none"]
    broken = [c.label for c in cases if baseline[c.label]["status"] != 200]
    exploiting = {
        c.label
        for c in cases
        if c.kind == "attack" and baseline[c.label].get("exploited") and c.label not in broken
    }
    rows, details = [], {"broken_without_agent": broken, "agents": {}}
    for agent, seen in outcomes.items():
        if agent == "none":
            continue
        missed, false_positives = [], []
        for case in cases:
            if case.label in broken:
                continue
            stopped = seen[case.label]["status"] != 200 or not seen[case.label].get("reached")
            if case.label in exploiting and not stopped:
                missed.append(case.label)
            if case.kind == "honest" and stopped:
                false_positives.append(case.label)
        details["agents"][agent] = {"missed": missed, "false_positives": false_positives}
        for family in corpus_families(cases):
            attacks = [c for c in cases if c.family == family and c.label in exploiting]
            honest = [
                c
                for c in cases
                if c.family == family and c.kind == "honest" and c.label not in broken
            ]
            rows.append(
                {
                    "agent": agent,
                    "family": family,
                    "attacks": len(attacks),
                    "detected": sum(c.label not in missed for c in attacks),
                    "honest": len(honest),
                    "false_positives": sum(c.label in false_positives for c in honest),
                }
            )
    return rows, details


def corpus_families(cases: Sequence[Any]) -> list[str]:
    return list(dict.fromkeys(c.family for c in cases))


# --- report ------------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} vCPU {model or platform.machine()}, {platform.system()}"


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def tables(results: dict[str, Any]) -> str:
    meta, agents = results["meta"], results["meta"]["agents"]
    out = [
        f"Latest run: {meta['date']}, {meta['machine']}, CPython {meta['python']}"
        + (" (quick mode)" if meta["quick"] else "")
        + ". Agents: "
        + "; ".join(f"`{k}` = {v}" for k, v in agents.items())
        + ".",
        "",
    ]
    if results.get("overhead"):
        out += summary(results["overhead"])
        out += [
            "**Overhead** (`POST /order`; median of interleaved rounds; ratio = throughput / "
            "no agent's in the same round, median; added = latency minus no agent's):",
            "",
            "| scenario | agent | req/s | ratio | p50 ms | p99 ms | added p50 ms | added p99 ms |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        base = {(r["server"], r["db"]): r for r in results["overhead"] if r["agent"] == "none"}
        for r in results["overhead"]:
            b = base.get((r["server"], r["db"]))
            added50 = r["p50_ms"] - b["p50_ms"] if b else None
            added99 = r["p99_ms"] - b["p99_ms"] if b else None
            out.append(
                f"| {r['server']}, {r['db']} | {r['agent']} | {r['rps']:,.0f} | "
                f"{fmt(r['ratio'], '.3f')} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{fmt(added50, '+.2f')} | {fmt(added99, '+.2f')} |"
            )
        out.append("")
    if results.get("micro"):
        ops = list(dict.fromkeys(r["op"] for r in results["micro"]))
        cols = [a for a in agents if a != "none"]
        out += [
            "**Per call** (µs added to one call inside a request, median; the no-agent call's "
            "own cost in the second column):",
            "",
            "| call | inputs | no agent µs | " + " | ".join(f"{a} +µs" for a in cols) + " |",
            "| --- | ---: | ---: | " + " | ".join("---:" for _ in cols) + " |",
        ]
        cell = {(r["op"], r["inputs"], r["agent"]): r for r in results["micro"]}
        for op in ops:
            for n in MICRO_INPUTS:
                if (op, n, "none") not in cell:
                    continue
                added = [fmt(cell[(op, n, a)]["added_us"], "+.1f") for a in cols]
                base_us = cell[(op, n, "none")]["us"]
                out.append(f"| {op} | {n:,} | {base_us:.1f} | " + " | ".join(added) + " |")
        out.append("")
    if results.get("accuracy"):
        out += [
            "**Accuracy** (detected = exploiting attacks stopped before the sink; false "
            "positives = honest values that did not reach their sink):",
            "",
            "| family | agent | detected | false positives |",
            "| --- | --- | ---: | ---: |",
        ]
        for r in sorted(results["accuracy"], key=lambda r: (r["family"], r["agent"])):
            rate = r["detected"] / r["attacks"] if r["attacks"] else 0
            out.append(
                f"| {r['family']} | {r['agent']} | {r['detected']}/{r['attacks']} ({rate:.0%}) "
                f"| {r['false_positives']}/{r['honest']} |"
            )
        out.append("")
    return "\n".join(out)


def summary(overhead: list[dict[str, Any]]) -> list[str]:
    """Per scenario: this agent's throughput loss, and each peer's added p50 latency as a
    multiple of this agent's (how many times more latency the peer adds)."""
    peers = [a for a in dict.fromkeys(r["agent"] for r in overhead) if a not in ("none", "rasp")]
    lines = [
        "**Summary** (throughput loss of `rasp`; a peer's added p50 latency as a multiple of "
        "`rasp`'s):",
        "",
        "| scenario | rasp throughput loss | "
        + " | ".join(f"{p} added p50 / rasp's" for p in peers)
        + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in peers) + " |",
    ]
    cell = {(r["server"], r["db"], r["agent"]): r for r in overhead}
    for server, db in dict.fromkeys((r["server"], r["db"]) for r in overhead):
        base, ours = cell.get((server, db, "none")), cell.get((server, db, "rasp"))
        if base is None or ours is None or ours["ratio"] is None:
            continue
        added = ours["p50_ms"] - base["p50_ms"]
        multiples = []
        for peer in peers:
            theirs = cell.get((server, db, peer))
            if theirs is None:
                multiples.append("n/a")
            elif added <= 0:
                multiples.append("rasp adds none")
            else:
                multiples.append(f"{(theirs['p50_ms'] - base['p50_ms']) / added:.1f}x")
        lines.append(
            f"| {server}, {db} | {1 - ours['ratio']:.1%} | " + " | ".join(multiples) + " |"
        )
    return [*lines, ""]


BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"


def update_readme(text: str) -> None:
    readme = HERE / "README.md"
    current = readme.read_text()
    if BEGIN not in current:
        return
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


# --- main --------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds: under 2 minutes")
    parser.add_argument("--phases", default="overhead,micro,accuracy")
    parser.add_argument("--agents", default=",".join(AGENTS))
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--dbs", default=",".join(DBS))
    parser.add_argument("--rounds", type=int, help="overhead rounds per agent (5; quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per round (10; quick 1)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    for name, allowed in (("agents", AGENTS), ("servers", SERVERS), ("dbs", DBS)):
        chosen = [v for v in getattr(args, name).split(",") if v]
        unknown = set(chosen) - set(allowed)
        if unknown or not chosen:
            parser.error(f"--{name} takes some of {', '.join(allowed)}")
        setattr(args, name, [v for v in allowed if v in chosen])
    args.phases = [p for p in args.phases.split(",") if p]
    if set(args.phases) - {"overhead", "micro", "accuracy"}:
        parser.error("--phases takes some of overhead, micro, accuracy")
    if "none" not in args.agents:
        parser.error("--agents must include none: every figure is a ratio to it")
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.duration = args.duration or (1.0 if args.quick else 10.0)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if "overhead" in args.phases and shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    began = time.monotonic()
    for agent in args.agents:
        venv_for(agent)
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "python": platform.python_version(),
            "quick": args.quick,
            "agents": {agent: version_of(agent) for agent in args.agents},
            "rounds": args.rounds,
            "duration_s": args.duration,
            "connections": args.connections,
        }
    }
    with tempfile.TemporaryDirectory(prefix="rasp-peers-") as tmp:
        workdir = Path(tmp)
        prefix = f"peers_{os.getpid()}_"
        uses_postgres = "postgresql" in args.dbs or "micro" in args.phases
        say("preparing the sandbox" + (" and the PostgreSQL tables" if uses_postgres else ""))
        shop.prepare(workdir / "sandbox", dsn=DSN if uses_postgres else None, prefix=prefix)
        bench = Bench(
            workdir,
            free_port(),
            ddtrace_rules(workdir) if "ddtrace" in args.agents else None,
            prefix,
        )
        if "accuracy" in args.phases:
            from peer_kit import vulnerable

            vulnerable.prepare(workdir / "sandbox", bench.service_url)
        try:
            with loopback_service(bench.service_port):
                if "accuracy" in args.phases:
                    results["accuracy"], results["accuracy_details"] = accuracy(bench, args)
                if "micro" in args.phases:
                    results["micro"] = micro(bench, args)
                if "overhead" in args.phases:
                    results["overhead"] = overhead(bench, args)
        finally:
            if uses_postgres:
                shop.drop_postgres(DSN, prefix)
    results["meta"]["seconds"] = round(time.monotonic() - began)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "peers-quick" if args.quick else "peers"
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    text = tables(results)
    print(text)
    from peer_kit import charts

    prefix_dir = args.out / "quick" if args.quick else args.out
    prefix_dir.mkdir(parents=True, exist_ok=True)
    written = charts.write_charts(results, prefix_dir)
    if not args.quick:
        update_readme(text)
    say(
        f"done in {results['meta']['seconds']} s: {args.out / f'{stem}.json'}, "
        + ", ".join(str(p) for p in written)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
