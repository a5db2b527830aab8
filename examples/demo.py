"""The demo: the example Flask shop under gunicorn, attacked and defended, over real HTTP.

It starts ``examples/flask_shop`` on a free loopback port with the agent in block mode and
the in-process metrics endpoint on, sends a scripted mix of real attacks (SQL injection,
shell injection, path traversal, server-side request forgery) and honest requests, and
prints what happened: a table of verdicts, the agent's alert lines, its Prometheus counters,
and whether the canary table survived and the shell canary file was never created. Exit
status 1 if an attack got through or an honest request was blocked.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Step:
    label: str
    method: str
    path: str
    form: dict[str, str] | None = None
    json_body: object = None
    attack: bool = False


STEPS = (
    Step("search for a lamp", "GET", "/products?name=lamp"),
    Step(
        "UNION steals the canary",
        "GET",
        "/products?name=" + urllib.parse.quote("x' UNION SELECT id, secret, 'x', 0 FROM canary--"),
        attack=True,
    ),
    Step("sort by price", "GET", "/products?sort=price"),
    Step(
        "blind boolean in ORDER BY",
        "GET",
        "/products?sort="
        + urllib.parse.quote(
            "(CASE WHEN (SELECT substr(secret,1,1) FROM canary WHERE id=1)='c'"
            " THEN price ELSE id END)"
        ),
        attack=True,
    ),
    Step("product 2", "GET", "/products/2"),
    Step("numeric tautology", "GET", "/products/" + urllib.parse.quote("1 OR 1=1"), attack=True),
    Step("alice logs in", "POST", "/login", form={"user": "alice", "password": "wonderland"}),
    Step(
        "admin'-- skips the password",
        "POST",
        "/login",
        form={"user": "admin'--", "password": "guess"},
        attack=True,
    ),
    Step(
        "JSON lookup of alice", "POST", "/api/users/lookup", json_body={"user": {"name": "alice"}}
    ),
    Step(
        "JSON tautology",
        "POST",
        "/api/users/lookup",
        json_body={"user": {"name": "' OR '1'='1"}},
        attack=True,
    ),
    Step(
        "unsubscribe an email", "POST", "/newsletter/unsubscribe", form={"email": "bob@example.com"}
    ),
    Step(
        "stacked DROP TABLE",
        "POST",
        "/newsletter/unsubscribe",
        form={"email": "x'; DROP TABLE canary; --"},
        attack=True,
    ),
    Step("kitchen recommendations", "GET", "/recommendations?category=kitchen"),
    Step(
        "attack in error-swallowing code",
        "GET",
        "/recommendations?category=" + urllib.parse.quote("office' OR 1=1 --"),
        attack=True,
    ),
    Step(
        "review with odd-looking text",
        "POST",
        "/products/1/reviews",
        json_body={
            "author": "Seán O'Brien",
            "body": "Select the best; drop the rest -- 10/10, would order by 1=1 again 😀",
        },
    ),
    Step("safe search for O'Brien", "GET", "/safe/products?name=" + urllib.parse.quote("O'Brien")),
    Step(
        "10 KB of prose in a review",
        "POST",
        "/products/2/reviews",
        form={"author": "alice", "body": "It's a 'fine' kettle; or is it? " * 320},
    ),
    Step("download the yearly report", "GET", "/download?name=report-2024.pdf"),
    Step("download a file named my..notes.txt", "GET", "/download?name=my..notes.txt"),
    Step("../ climbs to the database", "GET", "/download?name=../shop.db", attack=True),
    Step("absolute path to /etc/passwd", "GET", "/download?name=/etc/passwd", attack=True),
    Step("look up localhost", "GET", "/tools/lookup?host=localhost"),
    Step("look up a host (argument list)", "GET", "/tools/lookup-safe?host=localhost"),
)
SHELL_CANARY = Path(tempfile.gettempdir()) / "rasp-demo-pwned"


def _late_steps(port: int) -> tuple[Step, ...]:
    """Steps that name the running server or the shell canary."""
    touch = f"touch {SHELL_CANARY}"
    return (
        Step("; chains a command", "GET", "/tools/lookup?host=" + urllib.parse.quote(
            f"localhost; {touch}"), attack=True),
        Step("$( ) substitutes a command", "GET", "/tools/lookup?host=" + urllib.parse.quote(
            f"$({touch})"), attack=True),
        Step("fetch the shop's own /metrics", "GET", "/fetch?url=" + urllib.parse.quote(
            f"http://127.0.0.1:{port}/metrics"), attack=True),
        Step("fetch 2130706433 (= 127.0.0.1)", "GET", "/fetch?url=" + urllib.parse.quote(
            f"http://2130706433:{port}/metrics"), attack=True),
        Step("fetch cloud metadata", "GET", "/fetch?url=" + urllib.parse.quote(
            "http://169.254.169.254/latest/meta-data/iam/"), attack=True),
    )  # fmt: skip


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="rasp-demo-"))
    database = workdir / "shop.db"
    log_path = workdir / "server.log"
    port = _free_port()
    env = {
        **os.environ,
        "SHOP_DB": str(database),
        "RASP_MODE": "block",
        "RASP_METRICS_PATH": "/metrics",
        "PYTHONPATH": str(HERE / "flask_shop") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    command = [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4",
               "--bind", f"127.0.0.1:{port}", "app:app"]  # fmt: skip
    print(f"Starting the example shop: {' '.join(command[2:])} (block mode)")
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for(port, server)
            canary_before = _canary(database)
            SHELL_CANARY.unlink(missing_ok=True)
            failures = _run_steps(STEPS + _late_steps(port), port)
            metrics = _get(port, "/metrics")[1].decode()
        finally:
            server.terminate()
            server.wait(timeout=15)
    canary_after = _canary(database)

    print("\nAlerts written by the agent (one per distinct attack; repeats summed up):")
    for line in log_path.read_text(errors="replace").splitlines():
        if '"event":"rasp.attack' not in line:
            continue
        alert = json.loads(line[line.index("{") :])
        if alert["event"] == "rasp.attack":
            print(
                f"  {alert['action']:<8} {alert['kind']:<16} {alert['input_source']:<15} "
                f"{alert['code_function']}() line {alert['code_line']}: {alert['statement'][:60]}"
            )
        else:  # a summary, written when the window ends or the server stops
            print(f"  {'':<8} {alert['kind']:<16} {alert['input_source']:<15} "
                  f"... and {alert['repeats']} more of the same")  # fmt: skip
    print(
        "\nPrometheus metrics from the in-process /metrics endpoint (histogram buckets left out):"
    )
    for line in metrics.splitlines():
        if line.startswith("rasp_") and "_created" not in line and "_bucket{" not in line:
            print("  " + line)
    intact = canary_before == canary_after and canary_after is not None
    print(f"\nCanary table unchanged: {'yes' if intact else 'NO'} ({canary_after})")
    shell_ran = SHELL_CANARY.exists()
    print(f"Shell canary {SHELL_CANARY} created: {'YES' if shell_ran else 'no'}")
    if failures or not intact or shell_ran:
        print(f"\nDEMO FAILED: {failures} request(s) judged wrongly", file=sys.stderr)
        return 1
    print("\nEvery attack was blocked and every honest request was served.")
    return 0


def _run_steps(steps: tuple[Step, ...], port: int) -> int:
    failures = 0
    print(f"\n{'request':<38}{'kind':<8}{'status':>7}  verdict")
    for step in steps:
        status, body = _request(port, step)
        blocked = status == 403 and b"request_blocked" in body
        correct = blocked if step.attack else 200 <= status < 300
        failures += not correct
        verdict = ("blocked" if blocked else "served") + ("" if correct else "  <-- WRONG")
        print(f"{step.label:<38}{'attack' if step.attack else 'honest':<8}{status:>7}  {verdict}")
    return failures


def _request(port: int, step: Step) -> tuple[int, bytes]:
    data, headers = None, {"Accept": "application/json"}
    if step.form is not None:
        data = urllib.parse.urlencode(step.form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif step.json_body is not None:
        data = json.dumps(step.json_body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{step.path}", data=data, headers=headers, method=step.method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _get(port: int, path: str) -> tuple[int, bytes]:
    return _request(port, Step("", "GET", path))


def _canary(database: Path) -> list[tuple[int, str]] | None:
    connection = sqlite3.connect(database)
    try:
        return connection.execute("SELECT id, secret FROM canary ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return None
    finally:
        connection.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the shop exited early with status {server.returncode}")
        try:
            # gunicorn's workers load the app (and create its tables) after the port opens.
            if _get(port, "/safe/products")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the shop did not start within 30 s")


if __name__ == "__main__":
    raise SystemExit(main())
