"""Work handed to a thread pool while a request is served is judged as the request's own."""

from __future__ import annotations

import asyncio
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serving import serving

import rasp
from rasp import AttackBlocked
from rasp.context import current

TRAVERSAL = "../../etc/passwd"


def _read(base: Path, name: str) -> str:
    with open(os.path.join(base, name)) as file:
        return file.read()


def test_run_in_executor_carries_the_request(protected: rasp.Config, tmp_path: Path) -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, _read, tmp_path, TRAVERSAL)

    with serving(name=TRAVERSAL) as context, pytest.raises(AttackBlocked):
        asyncio.run(main())
    assert context.blocked is not None
    assert context.blocked.sink == "open"


def test_submit_carries_the_request(protected: rasp.Config, tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool, serving(name=TRAVERSAL) as context:
        future = pool.submit(_read, tmp_path, TRAVERSAL)
        with pytest.raises(AttackBlocked):
            future.result(timeout=30)
        assert context.blocked is not None
        # The pool's thread saw the request; the pool itself is unchanged for later work.
        assert pool.submit(current).result(timeout=30) is context


def test_outside_a_request_the_pool_runs_as_before(protected: rasp.Config, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="pool")
    marker.set("submitter")
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(_read, tmp_path, "secret.txt").result(timeout=30) == "s"
        assert pool.submit(current).result(timeout=30) is None
        # No context is copied outside a request: the pool thread keeps its own.
        assert pool.submit(marker.get).result(timeout=30) == "pool"


def test_only_the_request_is_carried(protected: rasp.Config, tmp_path: Path) -> None:
    # The pool thread keeps what its initializer set; the submitter's own variables (a
    # per-request connection, say) stay in the submitter's context.
    pooled: contextvars.ContextVar[str] = contextvars.ContextVar("pooled", default="<missing>")
    mine: contextvars.ContextVar[str] = contextvars.ContextVar("mine", default="<not here>")
    with ThreadPoolExecutor(max_workers=1, initializer=pooled.set, initargs=("set",)) as pool:
        token = mine.set("submitter's")
        try:
            with serving(name="report.txt") as context:
                assert pool.submit(pooled.get).result(timeout=30) == "set"
                assert pool.submit(mine.get).result(timeout=30) == "<not here>"
                assert pool.submit(current).result(timeout=30) is context
            assert pool.submit(current).result(timeout=30) is None  # reset after each task
        finally:
            mine.reset(token)


def test_honest_work_in_the_pool_runs(protected: rasp.Config, tmp_path: Path) -> None:
    (tmp_path / "report-2024.txt").write_text("ok")
    with ThreadPoolExecutor(max_workers=2) as pool, serving(name="report-2024.txt"):
        assert pool.submit(_read, tmp_path, "report-2024.txt").result(timeout=30) == "ok"
