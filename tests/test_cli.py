"""The ``rasp`` command, run as a subprocess: run, check, exit codes, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import free_port

RASP = [sys.executable, "-m", "rasp.cli"]
BOOTSTRAP = str(Path(__file__).resolve().parents[1] / "rasp" / "_bootstrap")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RASP_", "PROMETHEUS_"))}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def _rasp(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RASP, *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=120
    )


def test_version_and_help(tmp_path: Path) -> None:
    import rasp

    assert _rasp("--version", cwd=tmp_path).stdout.strip() == f"rasp {rasp.__version__}"
    shown = _rasp("--help", cwd=tmp_path).stdout
    assert "rasp run -- gunicorn app:app -w 4" in shown and "exit status" in shown
    assert "rasp run -- gunicorn" in _rasp("run", "--help", cwd=tmp_path).stdout


def test_check_prints_settings_with_their_origin(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.rasp]\nbody_limit = "2MiB"\n')
    done = _rasp("check", cwd=tmp_path, RASP_MODE="monitor")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert "monitor" in lines["mode"] and "(env RASP_MODE)" in lines["mode"]
    assert "2097152" in lines["body_limit"] and "pyproject.toml" in lines["body_limit"]
    assert "(default)" in lines["fail_closed"]
    assert "sqlite3" in lines and "flask" in lines


def test_check_fails_on_a_bad_setting_naming_it(tmp_path: Path) -> None:
    done = _rasp("check", cwd=tmp_path, RASP_ALERT_WINDOW="soon")
    assert done.returncode == 2
    assert done.stderr.startswith("rasp: RASP_ALERT_WINDOW='soon' is not valid")


_PROBE = "import rasp.sinks, sys; print(len(rasp.sinks.installed())); sys.exit(int(sys.argv[1]))"


def test_run_protects_the_program_and_passes_its_exit_status(tmp_path: Path) -> None:
    done = _rasp("run", "--", sys.executable, "-c", _PROBE, "7", cwd=tmp_path)
    assert done.returncode == 7, done.stderr
    assert int(done.stdout) > 40  # the sinks were installed before the program ran
    plain = subprocess.run(
        [sys.executable, "-c", _PROBE, "0"], env=_env(), capture_output=True, text=True
    )
    assert int(plain.stdout) == 0  # and not without rasp run


def test_run_refuses_a_bad_setting_before_starting_anything(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = _rasp(
        "run", "--mode", "monitor", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')",
        cwd=tmp_path, RASP_BODY_LIMIT="lots",
    )  # fmt: skip
    assert done.returncode == 2
    assert "RASP_BODY_LIMIT='lots' is not valid" in done.stderr
    assert not marker.exists()


def test_run_of_a_missing_program(tmp_path: Path) -> None:
    done = _rasp("run", "--", "no-such-program-here", cwd=tmp_path)
    assert done.returncode == 127
    assert "command not found: no-such-program-here" in done.stderr
    assert _rasp("run", cwd=tmp_path).returncode == 2  # nothing to run


def test_the_sitecustomize_it_hides_still_runs(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "their_module.py").write_text("VALUE = 'found'\n")
    # What it does to sys.path stays done (Nix's sitecustomize adds site directories).
    (theirs / "sitecustomize.py").write_text(
        f"import os, sys\nos.environ['THEIRS_RAN'] = 'yes'\nsys.path.append({str(extra)!r})\n"
    )
    probe = (
        "import os, rasp.sinks; print(os.environ.get('THEIRS_RAN'), bool(rasp.sinks.installed()))"
    )
    probe += "; import their_module; print(their_module.VALUE)"
    done = _rasp("run", "--", sys.executable, "-c", probe, cwd=tmp_path, PYTHONPATH=str(theirs))
    assert done.stdout.split() == ["yes", "True", "found"], done.stderr


def test_a_python_without_the_agent_started_by_the_program_is_left_alone(tmp_path: Path) -> None:
    # It inherits PYTHONPATH (so the bootstrap) and RASP_FAIL_CLOSED, but has no rasp.
    import venv

    venv.create(tmp_path / "bare", with_pip=False)
    bare = str(tmp_path / "bare" / "bin" / "python")
    program = f"import subprocess; print(subprocess.run([{bare!r}, '-c', 'print(42)']).returncode)"
    done = _rasp("run", "--", sys.executable, "-c", program, cwd=tmp_path, RASP_FAIL_CLOSED="1")
    assert (done.returncode, done.stdout.split()) == (0, ["42", "0"]), done.stderr
    assert "rasp" not in done.stderr


@pytest.mark.parametrize(("fail_closed", "status"), [("", 0), ("true", 3)])
def test_an_agent_that_cannot_start(tmp_path: Path, fail_closed: str, status: int) -> None:
    # Started through the bootstrap directly, with a setting rasp run would have refused.
    env = _env(PYTHONPATH=BOOTSTRAP, RASP_RUN="1", RASP_MODE="blok", RASP_FAIL_CLOSED=fail_closed)
    done = subprocess.run(
        [sys.executable, "-c", "print('the program ran')"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == status
    assert "rasp: the agent did not start (ConfigError: RASP_MODE='blok'" in done.stderr
    assert ("the program ran" in done.stdout) is (status == 0)


_APP = """
import sqlite3

def item(environ, start_response):
    db = sqlite3.connect(":memory:")
    query = environ["QUERY_STRING"].partition("=")[2].replace("%20", " ")
    rows = db.execute(f"SELECT {query}").fetchall()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(rows).encode()]

app = item  # a bare WSGI app: no framework, no middleware

async def asgi(scope, receive, send):
    raise RuntimeError("unused")
"""

_STARLETTE = """
import sqlite3
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def item(request):
    db = sqlite3.connect(":memory:")
    rows = db.execute(f"SELECT {request.query_params['q']}").fetchall()
    return PlainTextResponse(repr(rows))

app = Starlette(routes=[Route("/", item)])
"""


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            _status(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


_FLASK = """
import sqlite3
from flask import Flask, request

app = Flask(__name__)

@app.get("/<kind>/")
def item(kind):
    db = sqlite3.connect(":memory:")
    return {"rows": db.execute(f"SELECT {request.args['q']}").fetchall()}
"""


@pytest.mark.parametrize("server", ["gunicorn", "flask-gunicorn", "uvicorn", "gunicorn-asgi"])
def test_run_starts_a_server_protected_and_ctrl_c_stops_it(tmp_path: Path, server: str) -> None:
    port = free_port()
    path = "/"
    if server == "gunicorn":
        pytest.importorskip("gunicorn")
        (tmp_path / "app.py").write_text(_APP)
        command = ["gunicorn", "app:app", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    elif server == "flask-gunicorn":
        pytest.importorskip("flask")
        (tmp_path / "app.py").write_text(_FLASK)
        command = ["gunicorn", "app:app", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        path = "/items/"
    elif server == "gunicorn-asgi":  # gunicorn's own ASGI worker
        pytest.importorskip("gunicorn.workers.gasgi")
        pytest.importorskip("starlette")
        (tmp_path / "app.py").write_text(_STARLETTE)
        command = ["gunicorn", "app:app", "-k", "asgi", "--bind", f"127.0.0.1:{port}"]
    else:
        pytest.importorskip("uvicorn")
        pytest.importorskip("starlette")
        (tmp_path / "app.py").write_text(_STARLETTE)
        command = ["uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    bin_dir = str(Path(sys.executable).parent)
    env = _env(PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""), RASP_ALERT_WINDOW="0")
    process = subprocess.Popen(
        [*RASP, "run", "--metrics-path", "/metrics", "--", *command], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}{path}"
        _wait(url + "?q=1", process)
        assert _status(url + "?q=1") == 200
        assert _status(url + "?q=1%20UNION%20SELECT%202") == 403
        if server == "flask-gunicorn":  # the route's template labels the attack
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                assert 'route="/<kind>/"' in r.read().decode()
        process.send_signal(signal.SIGINT)  # the exec'd server is this very process
        assert process.wait(timeout=30) == 0
        assert b'"event":"rasp.attack"' in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()  # type: ignore[union-attr]


_GEVENT_APP = """
import sqlite3, time

def app(environ, start_response):
    time.sleep(0.05)  # patched by gevent: the other requests' greenlets run meanwhile
    db = sqlite3.connect(":memory:")
    value = environ["QUERY_STRING"].partition("=")[2].replace("%20", " ")
    rows = db.execute(f"SELECT {value}").fetchall()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(rows).encode()]
"""


def test_gevent_workers_keep_each_requests_inputs_apart(tmp_path: Path) -> None:
    # Many requests in one process at once, on greenlets: each is judged by its own inputs
    # (an honest one is never blocked by the attack next to it, nor an attack let through).
    pytest.importorskip("gevent")
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "app.py").write_text(_GEVENT_APP)
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = _env(PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    command = ["gunicorn", "app:app", "-k", "gevent", "--bind", f"127.0.0.1:{port}", "-w", "1"]
    process = subprocess.Popen(
        [*RASP, "run", "--", *command], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/?v="
        _wait(url + "1", process)
        values = ["1", "1%20UNION%20SELECT%202"] * 20
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(lambda v: _status(url + v), values))
        assert statuses == [200, 403] * 20
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
