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

Run: ``python benchmarks/peers.py`` (about 17 minutes), ``--quick`` (under 2 minutes once
the virtualenvs exist). Writes ``benchmarks/results/peers.json``, the charts
``benchmarks/results/peers_*.png`` and, unless ``--quick``, the tables in
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peer_kit import shop  # noqa: E402
from peer_kit.phases import accuracy, micro, overhead  # noqa: E402
from peer_kit.report import machine, tables, update_readme  # noqa: E402
from peer_kit.servers import (  # noqa: E402
    AGENTS,
    DBS,
    DSN,
    SERVERS,
    Bench,
    SetupError,
    ddtrace_rules,
    free_port,
    loopback_service,
    say,
    venv_for,
    version_of,
)

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
        try:
            shop.prepare(workdir / "sandbox", dsn=DSN if uses_postgres else None, prefix=prefix)
        except Exception as error:  # psycopg's OperationalError, without importing it here
            raise SetupError(
                f"PostgreSQL at {DSN!r} is not usable ({error}); "
                "run with --dbs sqlite --phases overhead,accuracy to leave it out"
            ) from error
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
    try:
        raise SystemExit(main())
    except SetupError as error:
        print(f"peers.py: {error}", file=sys.stderr)
        raise SystemExit(2) from None
