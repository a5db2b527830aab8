"""Detector screens (``rasp.context.screened``): one search over all of a request's values
must keep every input the detector could have a needle for, in order."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rasp.context import UserInput, screened
from rasp.detectors import path, sql

DETECTORS: list[tuple[Callable[[str], Sequence[str]], re.Pattern[str]]] = [
    (sql.candidate_needles, sql.SCREEN),
    (path.candidate_needles, path.SCREEN),
]
# Short texts over the characters the screens and the detectors care about, plus any.
TEXT = st.text(
    alphabet=st.sampled_from("ab_1 ./\\%:\x00'\"-;\n\u00e9Fe") | st.characters(), max_size=12
)


def _inputs(values: list[str]) -> list[UserInput]:
    return [UserInput("query", f"k{i}", value) for i, value in enumerate(values)]


@pytest.mark.parametrize(("needles", "screen"), DETECTORS, ids=["sql", "path"])
@given(values=st.lists(TEXT, max_size=8))
def test_a_screen_keeps_every_input_with_a_needle(
    needles: Callable[[str], Sequence[str]], screen: re.Pattern[str], values: list[str]
) -> None:
    inputs = _inputs(values)
    kept = screened(inputs, screen)
    assert kept == [i for i in inputs if i in kept]  # a subsequence: the order is kept
    assert {i for i in inputs if needles(i.value)} <= set(kept)


def test_a_screen_drops_plain_values_and_picks_each_input_once() -> None:
    inputs = _inputs(["field_05", "Paris", "../../etc/passwd", "50%..%", "C:", "file:x", "ok"])
    assert [i.value for i in screened(inputs, path.SCREEN)] == [
        "../../etc/passwd",
        "50%..%",
        "C:",
        "file:x",
    ]
    assert [i.value for i in screened(inputs, sql.SCREEN)] == [
        "../../etc/passwd",
        "50%..%",
        "C:",
        "file:x",
    ]


def test_a_value_with_a_line_break_keeps_every_input() -> None:
    inputs = _inputs(["plain", "two\nlines", "words"])
    assert screened(inputs, path.SCREEN) == inputs
