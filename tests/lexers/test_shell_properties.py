"""Properties of the shell lexer and detector: total, lossless, and linear in time."""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable

import pytest
from adversarial import fill, runs
from hypothesis import given, settings
from hypothesis import strategies as st

from rasp.detectors.shell import detect
from rasp.lexers.shell import Token, TokenKind, tokenize, words

OPENERS = {
    TokenKind.DOUBLE_QUOTE_OPEN,
    TokenKind.SUBSTITUTION_OPEN,
    TokenKind.ARITHMETIC_OPEN,
    TokenKind.BACKTICK_OPEN,
    TokenKind.OPERATOR,  # "(" of a subshell
}
LEAVES = {
    TokenKind.SINGLE_QUOTED,
    TokenKind.ANSI_C_QUOTED,
    TokenKind.PARAMETER,
    TokenKind.ESCAPE,
}

# Pieces that open, close, escape or separate something.
FRAGMENTS = [
    "'", '"', "`", "\\", "\\\n", "$", "$(", "$((", "))", "${", "}", "$'", '$"', "$x", "$1",
    "(", ")", ";", ";;", "&", "&&", "|", "||", "|&", "<", ">", ">>", "<<", "<<-", "2>&1",
    "&>", "#", " #", "\n", "\t", " ", "x", "ab", "1", "*", "?", "[", "{a,b}", "~", "=",
    "é", "東", "🎉", "\x00", "\r",
]  # fmt: skip

shell_like = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.sampled_from("'\"`\\$(){}[];&|<>#\n\t x1-=*~"), max_size=200),
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join),
)


def _check_tokens(text: str, tokens: list[Token]) -> None:
    assert "".join(text[t.start : t.end] for t in tokens) == text
    position = 0
    for token in tokens:
        assert token.start == position
        assert token.end > token.start
        position = token.end
        if not token.closed:
            # A leaf cut by the end of input, or an opening token whose closer never came.
            assert token.kind in LEAVES or token.kind in OPENERS
            if token.kind in LEAVES:
                assert token.end == len(text)
    assert position == len(text)


@settings(max_examples=300, deadline=None)
@given(text=shell_like)
def test_tokens_rejoin_and_are_contiguous(text: str) -> None:
    _check_tokens(text, tokenize(text))


@settings(max_examples=100, deadline=None)
@given(text=shell_like)
def test_words_are_ordered_spans_of_the_text(text: str) -> None:
    previous = 0
    for start, end in words(tokenize(text)):
        assert previous <= start < end <= len(text)
        previous = end


@settings(max_examples=250, deadline=None)
@given(data=st.data(), text=shell_like)
def test_detect_never_raises_on_a_slice_of_the_command(data: st.DataObject, text: str) -> None:
    # A slice of the command itself reaches the slow path (tokenize and judge).
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    value = text[start:end]
    finding = detect(text, value)
    if finding is not None:
        assert text[finding.start : finding.end] == finding.needle
        assert finding.reason
    argv_finding = detect(["sh", "-c", "--", text], value)
    assert (argv_finding is None) == (finding is None or len(value) < 2)


@settings(max_examples=200, deadline=None)
@given(command=st.text(max_size=200), value=st.text(max_size=50))
def test_detect_never_raises_on_arbitrary_text(command: str, value: str) -> None:
    detect(command, value)
    detect(command + value + command, value)
    detect([value, command, value], value)


@settings(max_examples=100, deadline=None)
@given(command=st.binary(max_size=200), value=st.binary(max_size=40))
def test_detect_never_raises_on_bytes(command: bytes, value: bytes) -> None:
    detect(command + value, value)  # type: ignore[arg-type]
    detect([command, b"-c", command + value], value)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(value=st.from_regex(r"[\w.,:@%+=/-]{2,30}", fullmatch=True), command=shell_like)
def test_plain_word_inputs_are_never_flagged_in_a_shell_line(value: str, command: str) -> None:
    # Unless the input is the whole line: then it is the program.
    assert detect("cmd " + command + value + command, value) is None


# --- Linear time ------------------------------------------------------------------------
# Each adversarial text is judged against a benign command stream of the same size; the
# bound is relative, as in test_sql_properties.py: a quadratic blow-up costs hundreds of
# times the benign run at these sizes, a linear lexer a few times at most.

SLOWDOWN_BOUND = 25
SMALL = 32 * 1024
LARGE = 1024 * 1024
# Dense with tokens, like a long pipeline: as many tokens per character as attack text.
BENIGN_UNIT = "cat 'a b' \"$x\" | grep -e y > out.txt; ls -l /tmp/$(date) && echo ok\n"


def _runs(size: int, seed: int) -> str:
    return runs(FRAGMENTS, size, seed)


ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "single-quotes": lambda n: fill("'", n),
    "double-quotes": lambda n: fill('"', n),
    "backticks": lambda n: fill("`", n),
    "backslashes": lambda n: fill("\\", n),
    "substitution-openers": lambda n: fill("$(", n),
    "arithmetic-openers": lambda n: fill("$((", n),
    "nested-in-quotes": lambda n: fill('"$(', n),
    "closers": lambda n: fill(")", n),
    "brace-openers": lambda n: fill("${", n),
    "ansi-escapes": lambda n: "$'" + fill("\\'", n - 2),
    "hashes-in-words": lambda n: fill("'a'#", n),
    "comments": lambda n: fill(";#x\n", n),
    "digits-then-word": lambda n: fill("1", n - 2) + "x;",
    "redirections": lambda n: fill("2>&1", n),
    "braces": lambda n: "x" + fill("{,", n - 1),
    "mixed-runs": lambda n: _runs(n, 7),
}


def _detect_time(text: str, best_so_far: float) -> float:
    # The needle is the end of the text: present and not a plain word, so the text is lexed
    # and every occurrence judged.
    needle = text[-40:]
    assert not re.fullmatch(r"[\w.,:@%+=/^-]+", needle)
    gc.collect()
    began = time.perf_counter()
    detect(text, needle)
    return min(best_so_far, time.perf_counter() - began)


def _assert_linear(text: str) -> None:
    benign = fill(BENIGN_UNIT, len(text))
    best, best_benign = float("inf"), float("inf")
    for _ in range(5):
        best_benign = _detect_time(benign, best_benign)
        best = _detect_time(text, best)
        if best < SLOWDOWN_BOUND * best_benign:
            return
    assert best < SLOWDOWN_BOUND * best_benign, f"{best:.3f}s against a benign {best_benign:.3f}s"


@pytest.mark.parametrize("pattern", sorted(ADVERSARIAL))
def test_adversarial_input_is_linear(pattern: str) -> None:
    _assert_linear(ADVERSARIAL[pattern](SMALL))


def test_one_megabyte_of_adversarial_runs_is_linear() -> None:
    _assert_linear(_runs(LARGE, 2024))


@pytest.mark.parametrize(
    ("unit", "value"),
    [("'a b' ", "a b"), ('"a b" ', "a b"), ('x"a b"y ', 'x"a b"y'), ("a\\ b ", "a\\ b")],
)
def test_many_harmless_occurrences_stay_linear(unit: str, value: str) -> None:
    # Every occurrence is judged (none is an attack): the cost per occurrence is constant.
    text = fill(unit, SMALL - SMALL % len(unit))
    benign = fill(BENIGN_UNIT, len(text))
    best, best_benign = float("inf"), float("inf")
    for _ in range(3):
        gc.collect()
        began = time.perf_counter()
        assert detect(text, value) is None
        best = min(best, time.perf_counter() - began)
        best_benign = _detect_time(benign, best_benign)
        if best < SLOWDOWN_BOUND * best_benign:
            return
    assert best < SLOWDOWN_BOUND * best_benign


def test_many_overlapping_occurrences_stay_linear() -> None:
    # A periodic input in a periodic command: every position is an occurrence.
    text = fill("a;", SMALL)
    value = fill("a;", 4096)
    benign = fill(BENIGN_UNIT, SMALL)
    began = time.perf_counter()
    assert detect("'" + text + "'", value) is None  # all inside one quoted string
    took = time.perf_counter() - began
    began = time.perf_counter()
    detect(benign, benign[-40:])
    assert took < SLOWDOWN_BOUND * max(time.perf_counter() - began, 1e-3)
