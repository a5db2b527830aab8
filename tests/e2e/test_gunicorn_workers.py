"""rasp.gunicorn under a real gunicorn: one scrape adds up the attacks every worker blocked.

The Flask shop runs with ``-c python:rasp.gunicorn`` and 4 sync workers. Attacks arrive on
new connections at once, so several workers take them; their counters, read worker by
worker from the multiprocess files, add up to what ``/metrics`` (served by any worker) and
the master's ``RASP_METRICS_PORT`` both report, before and after a worker is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from servers import Server, free_port, running

pytest.importorskip("gunicorn", reason="the gunicorn tests need gunicorn (pip install -e .[test])")
pytest.importorskip("flask", reason="the gunicorn tests need flask (pip install -e .[test])")

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "flask_shop"
ATTACKS = 40
ATTACK = {"name": "' OR 1=1 --"}
WORKERS = 4
HOOKS = {"child_exit", "on_exit", "when_ready"}
STALE_ATTACKS = 1000.0


@dataclass
class Gunicorn(Server):
    pid: int


def _env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASP_", "PROMETHEUS_"))}
    env.pop("prometheus_multiproc_dir", None)
    env.update(
        PYTHONPATH=os.pathsep.join([str(SHOP), str(ROOT)]),
        PYTHONUNBUFFERED="1",
        SHOP_DB=str(workdir / "shop.db"),
        RASP_MODE="block",
        RASP_METRICS_PATH="/metrics",
        **extra,
    )
    return env


def _command(workers: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", "python:rasp.gunicorn", "app:app",
            "--workers", str(workers), "--log-level", "warning"]  # fmt: skip


@contextmanager
def _gunicorn(workdir: Path, env: dict[str, str], workers: int = WORKERS) -> Iterator[Gunicorn]:
    port = free_port()
    server = Gunicorn("gunicorn", f"http://127.0.0.1:{port}", workdir / "stderr.log", 0)
    args = [*_command(workers), "--bind", f"127.0.0.1:{port}"]
    # cwd is the temp dir so no pyproject.toml [tool.rasp] of the checkout applies.
    with running(server, args, workdir, env, "/products/1") as process:
        server.pid = process.pid
        yield server


def _blocked_sql(samples: Iterable[Sample]) -> float:
    return sum(
        sample.value
        for sample in samples
        if sample.name == "rasp_attacks_total"
        and sample.labels.get("kind") == "sql_injection"
        and sample.labels.get("action") == "blocked"
    )


def _scrape(url: str) -> tuple[float, float]:
    """Blocked SQL injections and blocked requests, as one scrape of ``url`` shows them."""
    response = httpx.get(url, timeout=20.0)
    assert response.status_code == 200, response.text
    samples = [s for f in text_string_to_metric_families(response.text) for s in f.samples]
    blocked = [s.value for s in samples if s.name == "rasp_requests_blocked_total"]
    return _blocked_sql(samples), sum(blocked)


def _attacks_by_worker(metrics_dir: Path) -> dict[int, float]:
    """Blocked SQL injections each process counted, read from its own counter file."""
    found = {}
    for path in metrics_dir.glob("counter_*.db"):
        metrics = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        found[int(path.stem.split("_")[1])] = _blocked_sql(s for m in metrics for s in m.samples)
    return found


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _holds_listener(pid: int, port: int) -> bool:
    """Whether process ``pid`` has the socket listening on ``port`` open (Linux /proc)."""
    sockets = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:] if table.exists() else ():
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                sockets.add(f"socket:[{fields[9]}]")
    links = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            links.append(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return bool(sockets) and any(link in sockets for link in links)


def _wait_for(condition: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {condition}")
        time.sleep(0.05)


def _stale_counter_file(metrics_dir: Path, tmp_path: Path) -> Path:
    """A counter file as a crashed earlier run leaves it, holding ``STALE_ATTACKS``."""
    scratch = tmp_path / "earlier-run"
    scratch.mkdir()
    code = (
        "from prometheus_client import Counter\n"
        "Counter('rasp_attacks', 'earlier run', ['kind', 'sink', 'action', 'route'])"
        f".labels('sql_injection', 'sqlite3', 'blocked', '/products').inc({STALE_ATTACKS})\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(scratch)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=20)
    (written,) = scratch.glob("counter_*.db")
    stale = metrics_dir / "counter_99999.db"
    written.rename(stale)
    assert _attacks_by_worker(metrics_dir) == {99999: STALE_ATTACKS}
    return stale


def _attack(url: str) -> int:
    # A client of its own per request: a new connection, which any worker may accept.
    return httpx.get(f"{url}/products", params=ATTACK, timeout=20.0).status_code


def test_config_module_sets_only_the_hooks(tmp_path: Path) -> None:
    # gunicorn takes every global of a config module named like one of its settings.
    code = (
        "import os, sys, gunicorn.config, rasp.gunicorn\n"
        "names = {s.name for s in gunicorn.config.KNOWN_SETTINGS} & set(vars(rasp.gunicorn))\n"
        "print(sorted(names), os.environ['PROMETHEUS_MULTIPROC_DIR'],\n"
        "      'prometheus_client' in sys.modules)\n"
    )
    env = _env(tmp_path, TMPDIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=20,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    names, directory, imported = result.stdout.rsplit(" ", 2)
    assert names == repr(sorted(HOOKS))
    assert Path(directory).parent == tmp_path and Path(directory).name.startswith("rasp-prom")
    assert Path(directory).is_dir()
    assert imported.strip() == "False"  # chosen in the workers, after the directory is set


def test_invalid_metrics_port_stops_gunicorn_at_start(tmp_path: Path) -> None:
    env = _env(tmp_path, RASP_METRICS_PORT="nine", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    result = subprocess.run(
        [*_command(1), "--bind", f"127.0.0.1:{free_port()}"], env=env, cwd=tmp_path,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.returncode != 0
    assert "RASP_METRICS_PORT='nine' is not valid: expected a TCP port" in result.stderr


def test_one_scrape_adds_up_every_worker(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    stale = _stale_counter_file(metrics_dir, tmp_path)
    metrics_port = free_port()
    env = _env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
               RASP_METRICS_PORT=str(metrics_port))  # fmt: skip
    master_url = f"http://127.0.0.1:{metrics_port}/metrics"

    with _gunicorn(tmp_path, env) as server:
        assert not stale.exists()  # the master cleared the earlier run's files

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(_attack, [server.url] * ATTACKS))
        assert statuses == [403] * ATTACKS

        by_worker = {pid: n for pid, n in _attacks_by_worker(metrics_dir).items() if n}
        assert sum(by_worker.values()) == ATTACKS
        assert len(by_worker) >= 2, f"one worker took every attack: {by_worker}"
        assert all(_parent(pid) == server.pid for pid in by_worker)

        assert _scrape(f"{server.url}/metrics") == (ATTACKS, ATTACKS)
        assert _scrape(master_url) == (ATTACKS, ATTACKS)
        assert _holds_listener(server.pid, metrics_port)  # the master's port, not a worker's

        # A worker dies: its counters stay in the sum, its live gauges leave it.
        victim = max(by_worker, key=lambda pid: by_worker[pid])
        live_gauge = metrics_dir / f"gauge_livemax_{victim}.db"
        assert live_gauge.exists(), "the agent's info gauge (livemax) should exist per worker"
        os.kill(victim, signal.SIGKILL)
        _wait_for("child_exit to mark the killed worker dead", lambda: not live_gauge.exists())
        assert (metrics_dir / f"counter_{victim}.db").exists()

        assert _scrape(f"{server.url}/metrics") == (ATTACKS, ATTACKS)
        assert _scrape(master_url) == (ATTACKS, ATTACKS)
        assert _attack(server.url) == 403  # the workers left (and the new one) still guard
        assert _scrape(master_url) == (ATTACKS + 1, ATTACKS + 1)


def test_private_directory_is_removed_at_exit(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    with _gunicorn(tmp_path, _env(tmp_path, TMPDIR=str(temp)), workers=1) as server:
        (private,) = temp.glob("rasp-prometheus-*")
        assert _attack(server.url) == 403
        assert _scrape(f"{server.url}/metrics") == (1, 1)
        assert any(private.glob("counter_*.db"))
    assert not private.exists()
