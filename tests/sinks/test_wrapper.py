"""Patched functions stay ordinary values: they pickle (process pools) and copy."""

from __future__ import annotations

import copy
import os
import pickle
import shutil
import socket
import sqlite3
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import wrapt

import rasp

PATCHED = {
    "open": lambda: open, "shutil.rmtree": lambda: shutil.rmtree, "os.system": lambda: os.system,
    "os.stat": lambda: os.stat, "socket.getaddrinfo": lambda: socket.getaddrinfo,
    "sqlite3.connect": lambda: sqlite3.connect,
}  # fmt: skip


@pytest.mark.parametrize("name", list(PATCHED))
def test_a_patched_function_pickles_and_copies_as_itself(protected: rasp.Config, name: str) -> None:
    patched = PATCHED[name]()
    assert isinstance(patched, wrapt.FunctionWrapper)
    original = patched.__wrapped__
    # By reference to the original's module and name: the guarded function where the
    # module is patched, the original where it is not.
    assert pickle.loads(pickle.dumps(patched)) in (patched, original)
    assert copy.copy(patched) is patched
    assert copy.deepcopy({"call": patched})["call"] is patched


def test_a_process_pool_runs_patched_functions(protected: rasp.Config, tmp_path: Path) -> None:
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    (doomed / "file").write_text("x")
    with ProcessPoolExecutor(max_workers=1) as pool:
        pool.submit(shutil.rmtree, doomed).result(timeout=60)
        assert pool.submit(os.path.exists, str(doomed)).result(timeout=60) is False
        done = pool.submit(subprocess.run, ["true"], check=True).result(timeout=60)
    assert done.returncode == 0


def test_the_pickle_needs_nothing_of_the_agent(protected: rasp.Config) -> None:
    data = pickle.dumps(shutil.rmtree)
    assert b"rasp" not in data
    assert pickle.loads(data) is shutil.rmtree


def test_a_function_not_where_its_name_points_refuses_to_pickle(
    protected: rasp.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Something else replaced shutil.rmtree before the agent wrapped it: pickling fails
    # now, as pickle fails on such a function, not later in a worker process.
    monkeypatch.setattr(rasp.sinks._wrapper, "_lookup", lambda module, qualname: None)
    with pytest.raises(pickle.PicklingError, match="rmtree"):
        pickle.dumps(shutil.rmtree)
