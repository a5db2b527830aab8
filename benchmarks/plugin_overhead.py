"""What ``pytest --rasp`` adds to a test suite's run time.

Method: the demo app's honest test suite (tests/plugin/demo_app: a Flask app on SQLite with
three vulnerable routes and three safe twins, and a test per route) is run in a fresh
``pytest`` subprocess, in interleaved rounds without and with ``--rasp`` (``--rasp-fail-on
none``: the findings are reported, the run is not failed). Two figures: the wall time of the
whole subprocess (interpreter start, collection, the tests: what CI pays), and the time
pytest reports for the tests themselves, each repeated ``--repeat`` times inside one run so
that the per-test cost is above the noise. Medians of the rounds. Run:
``python benchmarks/plugin_overhead.py`` (``--quick`` for fewer rounds).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "tests" / "plugin" / "demo_app"


def _run(folder: Path, rasp: bool, repeat: int) -> tuple[float, float]:
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--count={repeat}"]
    if rasp:
        args += ["--rasp", "--rasp-fail-on=none"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RASP_")}
    started = time.perf_counter()
    done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the demo suite failed:\n{done.stdout}\n{done.stderr}")
    match = re.search(r"passed in ([0-9.]+)s", done.stdout)
    return wall, float(match.group(1)) if match else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--repeat", type=int, default=50, help="runs of each test per session")
    args = parser.parse_args()
    rounds = 3 if args.quick else 9
    folder = Path(tempfile.mkdtemp(prefix="rasp-plugin-bench-"))
    shutil.copytree(DEMO, folder, dirs_exist_ok=True)
    # Each test run --repeat times: a tiny conftest instead of a plugin dependency.
    (folder / "conftest.py").write_text(
        "import pytest\n\n"
        "def pytest_addoption(parser):\n"
        "    parser.addoption('--count', type=int, default=1)\n\n"
        "def pytest_generate_tests(metafunc):\n"
        "    count = metafunc.config.getoption('count')\n"
        "    if count > 1:\n"
        "        metafunc.fixturenames.append('_repeat')\n"
        "        metafunc.parametrize('_repeat', range(count))\n"
    )
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(rounds):
        for rasp in (False, True):
            results[rasp].append(_run(folder, rasp, args.repeat))
    shutil.rmtree(folder, ignore_errors=True)
    print(f"median of {rounds} interleaved rounds; each test run {args.repeat} times; "
          f"Python {sys.version.split()[0]}")  # fmt: skip
    print(f"{'':<22} {'without':>9} {'--rasp':>9} {'ratio':>7}")
    for index, label in ((0, "subprocess wall s"), (1, "tests (pytest) s")):
        without = statistics.median(r[index] for r in results[False])
        with_rasp = statistics.median(r[index] for r in results[True])
        print(f"{label:<22} {without:>9.2f} {with_rasp:>9.2f} {with_rasp / without:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
