from __future__ import annotations

from collections.abc import Iterator

import pytest

import rasp
from rasp import guard


@pytest.fixture(autouse=True)
def _agent_errors_fail_tests() -> Iterator[None]:
    # In production an internal error is swallowed (fail open); in tests it must fail loudly.
    guard.raise_internal_errors = True
    yield
    guard.raise_internal_errors = False


@pytest.fixture
def protected() -> Iterator[rasp.Config]:
    """The agent installed in block mode for the test, removed afterwards."""
    config = rasp.protect(rasp.Config())
    yield config
    rasp.unprotect()
