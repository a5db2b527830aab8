"""Process sinks: a shell injection never starts a process; honest commands run."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import serving

import rasp
from rasp import AttackBlocked

PATCHED = {
    "subprocess.Popen.__init__", "os.system", "os.execv", "os.execve", "os.execvp",
    "os.execvpe", "os.spawnv", "os.spawnve", "os.spawnvp", "os.spawnvpe", "os.posix_spawn",
    "os.posix_spawnp",
}  # fmt: skip


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    """The file a successful injection would create."""
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "the injected command ran"


def test_every_process_chokepoint_is_patched(protected: rasp.Config) -> None:
    assert PATCHED <= set(rasp.sinks.installed())


def test_unprotect_puts_the_originals_back() -> None:
    originals = (subprocess.Popen.__init__, os.system, os.posix_spawn, os.execv)
    rasp.protect(rasp.Config())
    assert os.system is not originals[1]
    rasp.unprotect()
    assert (subprocess.Popen.__init__, os.system, os.posix_spawn, os.execv) == originals


@pytest.mark.parametrize(
    "run",
    [
        lambda cmd: subprocess.run(cmd, shell=True, check=False),
        lambda cmd: subprocess.call(cmd, shell=True),
        lambda cmd: subprocess.check_output(cmd, shell=True),
        lambda cmd: subprocess.getoutput(cmd),
        lambda cmd: os.system(cmd),
        lambda cmd: os.popen(cmd).read(),
        lambda cmd: subprocess.run(["sh", "-c", cmd], check=False),
        lambda cmd: subprocess.run(["/bin/bash", "-ec", cmd], check=False),
        lambda cmd: subprocess.run(("sh", "-c", cmd), executable="/bin/sh", check=False),
        lambda cmd: os.spawnv(os.P_WAIT, "/bin/sh", ["sh", "-c", cmd]),
        lambda cmd: os.spawnlp(os.P_WAIT, "sh", "sh", "-c", cmd),
        lambda cmd: os.posix_spawn("/bin/sh", ["sh", "-c", cmd], os.environ),
        lambda cmd: os.posix_spawnp("sh", ["sh", "-c", cmd], os.environ),
    ],
    ids=["run", "call", "check_output", "getoutput", "os.system", "os.popen", "sh -c",
         "bash -ec", "executable=", "spawnv", "spawnlp", "posix_spawn", "posix_spawnp"],
)  # fmt: skip
def test_shell_injection_is_blocked_before_the_process_starts(
    protected: rasp.Config, canary: Path, run: object
) -> None:
    payload = f"x; touch {canary}"
    with serving(host=payload), pytest.raises(AttackBlocked) as caught:
        run(f"echo {payload}")  # type: ignore[operator]
    incident = caught.value.incident
    assert incident.kind.value == "shell_injection"
    assert incident.input_source == "query.host"
    assert incident.code_file == __file__


def test_input_as_the_whole_executable_is_blocked(protected: rasp.Config) -> None:
    with serving(tool="/usr/bin/id"), pytest.raises(AttackBlocked) as caught:
        subprocess.run(["/usr/bin/id", "-u"], check=False)
    assert caught.value.incident.reason
    # os.execv replaces the process that calls it: judged in a forked child, so that a
    # regression cannot replace the test runner with /bin/true (exit status 0, all green).
    pid = os.fork()
    if pid == 0:
        try:
            with serving(tool="/bin/true"):
                os.execv("/bin/true", ["true"])
        except AttackBlocked:
            os._exit(42)
        os._exit(1)
    assert os.waitpid(pid, 0)[1] >> 8 == 42


def test_async_subprocess_shell_is_blocked(protected: rasp.Config, canary: Path) -> None:
    payload = f"$(touch {canary})"

    async def main() -> None:
        process = await asyncio.create_subprocess_shell(f"echo {payload}")
        await process.wait()

    with serving(q=payload), pytest.raises(AttackBlocked):
        asyncio.run(main())


@pytest.mark.parametrize("how", ["shell", "exec"])
def test_uvloop_subprocesses_are_judged(protected: rasp.Config, canary: Path, how: str) -> None:
    uvloop = pytest.importorskip("uvloop")
    payload = f"$(touch {canary})"

    async def main() -> None:
        if how == "shell":
            process = await asyncio.create_subprocess_shell(f"echo {payload}")
        else:
            process = await asyncio.create_subprocess_exec("sh", "-c", f"echo {payload}")
        await process.wait()

    with serving(q=payload) as context, pytest.raises(AttackBlocked):
        uvloop.run(main())
    assert context.blocked is not None
    assert context.blocked.sink == f"uvloop.Loop.subprocess_{how}"
    assert context.blocked.code_file == __file__


@pytest.mark.parametrize(
    "run",
    [
        lambda line: subprocess.run(["sh", "-c", line], check=False),
        lambda line: os.spawnve(os.P_WAIT, "/bin/sh", ["sh", "-c", line], dict(os.environ)),
        lambda line: os.posix_spawn("/bin/sh", ["sh", "-c", line], dict(os.environ)),
    ],
    ids=["sh -c", "spawnve", "posix_spawn"],
)
def test_a_quote_bearing_payload_in_an_argument_list_is_found(
    protected: rasp.Config, canary: Path, run: object
) -> None:
    # The argument the shell receives holds the payload as sent, quote and all; a search
    # on a re-quoted rendering of the list (shlex.join) would never find it.
    payload = f"x'; touch {canary} #"
    with serving(name=payload), pytest.raises(AttackBlocked) as caught:
        run(f"echo '{payload}'")  # type: ignore[operator]
    assert caught.value.incident.input_source == "query.name"


@pytest.mark.parametrize(
    "value",
    ["report-2024.pdf", "alice@example.com", "https://example.com/a?b=c", "O'Brien",
     "x; touch /tmp/never", "$(id)", "a b c", "naïve café", "-rf"],
)  # fmt: skip
def test_honest_and_quoted_inputs_run(protected: rasp.Config, value: str) -> None:
    with serving(q=value):
        # An argument list: the value is one argument, whatever it holds.
        listed = subprocess.run(["echo", value], capture_output=True, text=True, check=True)
        # A shell line with the value quoted the right way.
        quoted = subprocess.run(
            f"echo {shlex.quote(value)}", shell=True, capture_output=True, text=True, check=True
        )
    assert listed.stdout == quoted.stdout == value + "\n"


def test_outside_a_request_nothing_is_judged(protected: rasp.Config, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    subprocess.run(f"echo x; touch {marker}", shell=True, check=True)
    assert marker.exists()


def test_monitor_mode_runs_the_command_and_alerts_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rasp.protect(rasp.Config(mode="monitor"))
    try:
        marker = tmp_path / "ran"
        payload = f"x; touch {marker}"
        with serving(host=payload), caplog.at_level(logging.WARNING, logger="rasp.alerts"):
            # Popen may start the child through os.posix_spawn: still one judgement.
            subprocess.run(f"echo {payload}", shell=True, check=True, close_fds=False)
        assert marker.exists()
        assert len([r for r in caplog.records if r.name == "rasp.alerts"]) == 1
    finally:
        rasp.unprotect()


def test_a_bad_call_keeps_its_own_error(protected: rasp.Config) -> None:
    with serving(q="hello world"):
        with pytest.raises(FileNotFoundError):
            subprocess.run(["/nonexistent/program-xyz"], check=False)
        with pytest.raises(TypeError):
            subprocess.Popen()  # type: ignore[call-overload]
        assert os.system(f"{sys.executable} -c pass") == 0
