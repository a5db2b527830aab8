"""Cost of the process, file and network guards per call, as microseconds added and ratios.

Method: each call is timed unguarded (agent uninstalled) and guarded (agent installed), in
interleaved rounds, and the median of the rounds is reported, because these machines are
noisy. None of the request's inputs occurs in the call's argument (the common case: the
guard looks for the inputs and finds none), in four situations:

  outside       no request is being served
  browser GET   a realistic request (headers, a session cookie, four parameters, parsed by
                the agent's own source parser)
  N inputs      a request with 20 or 1,000 varied inputs (words joined by punctuation)

The calls: ``open()`` + ``read()`` of a small file, ``os.stat``, ``subprocess.run(["true"])``
and ``socket.getaddrinfo("localhost", 80)`` (answered from /etc/hosts, no network).
Run: ``python benchmarks/sinks_overhead.py`` (``--quick`` for a shorter run).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from sqlite_overhead import _browser_context, _context, _inputs

from rasp import Config, protect, unprotect
from rasp.context import _CURRENT, RequestContext


def _time(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    args = parser.parse_args()
    rounds = 5 if args.quick else 11
    scale = 1 if args.quick else 3

    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "report-2024.txt")
    with open(path, "w") as handle:
        handle.write("x" * 512)

    def read() -> object:
        with open(path) as handle:
            return handle.read()

    calls: list[tuple[str, Callable[[], object], int]] = [
        ("open()+read()", read, 2000 * scale),
        ("os.stat()", lambda: os.stat(path), 4000 * scale),
        ("getaddrinfo(localhost)", lambda: socket.getaddrinfo("localhost", 80), 300 * scale),
        ("subprocess.run([true])", lambda: subprocess.run(["true"], check=True), 20 * scale),
    ]
    scenarios: list[tuple[str, RequestContext | None]] = [
        ("outside a request", None),
        ("browser GET", _browser_context("oak chair")),
        ("20 varied inputs", _context(_inputs(20, None))),
        ("1,000 varied inputs", _context(_inputs(1000, None))),
    ]
    print(
        f"median of {rounds} interleaved rounds, no input found in the argument; "
        f"Python {sys.version.split()[0]}"
    )
    print(f"{'call':<24}{'scenario':<22}{'baseline us':>12}{'guarded us':>12}"
          f"{'added us':>10}{'ratio':>8}")  # fmt: skip
    for name, call, count in calls:
        for scenario, context in scenarios:
            base_times, guard_times = [], []
            for _ in range(rounds):
                for guarded in (False, True):
                    if guarded:
                        protect(Config())
                    token = _CURRENT.set(context)
                    try:
                        elapsed = _time(call, count)
                    finally:
                        _CURRENT.reset(token)
                        unprotect()
                    (guard_times if guarded else base_times).append(elapsed)
            base, guard = statistics.median(base_times), statistics.median(guard_times)
            print(
                f"{name:<24}{scenario:<22}{base * 1e6:>12.2f}{guard * 1e6:>12.2f}"
                f"{(guard - base) * 1e6:>10.2f}{guard / base:>8.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
