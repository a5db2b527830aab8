"""The package stays ruff-clean, formatted and mypy --strict clean (STYLE.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_check_and_format() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed in this environment")
    checked = _run(ruff, "check", "rasp", "tests", "examples", "benchmarks")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = _run(ruff, "format", "--check", "rasp", "tests", "examples", "benchmarks")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_mypy_strict() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed in this environment")
    result = _run(sys.executable, "-m", "mypy", "--strict", "rasp")
    assert result.returncode == 0, result.stdout + result.stderr
