"""The three phases of ``peers.py``: overhead under wrk, the cost of one guarded call, and
accuracy over HTTP on the corpus. Each takes the run's shared state and its arguments and
returns JSON-able rows (see ``report.py`` for how they are shown)."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import statistics
import subprocess
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from peer_kit.servers import SESSION_COOKIE, AppServer, Bench, Progress, request, say, servers

_T = TypeVar("_T")

MICRO_OPS = {"sqlite": 2000, "psycopg": 300, "open": 2000, "subprocess": 40, "getaddrinfo": 500}
MICRO_NAMES = {
    "sqlite": "sqlite3 execute",
    "psycopg": "psycopg execute",
    "open": "open()",
    "subprocess": "subprocess.run",
    "getaddrinfo": "getaddrinfo",
}
MICRO_INPUTS = (0, 20, 1000)

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
    """One fixed-duration round of ``script``'s requests against ``url``."""
    duration = f"-d{max(1, round(seconds))}s"
    return run_wrk([f"-c{connections}", duration, "-s", str(script), url])


def run_wrk(arguments: list[str]) -> dict[str, float]:
    """Run wrk (one thread, latency percentiles) and read its report: requests per second,
    p50 and p99 in ms, non-2xx answers and socket errors."""
    output = subprocess.run(
        ["wrk", "-t1", "--latency", *arguments], capture_output=True, text=True, check=True
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


def rotated(items: Sequence[_T], shift: int) -> list[_T]:
    """``items`` rotated by ``shift``: round r starts with its r-th agent."""
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


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
            for app in [] if args.quick else apps:  # warm-up: imports, connections, caches
                wrk(f"{app.url}/order", 3, script, args.connections)
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
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {"broken_without_agent": broken, "agents": {}}
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
