"""The peer benchmark's accuracy corpus (benchmarks/peer_kit), run in-process under our agent.

Every case runs twice through ``vulnerable.handle``: once outside a request (the agent is
installed but idle) with the oracle, which says whether the attack really exploits; once
inside a request whose query string holds ``v=value``, as the middleware would serve it.
An exploiting attack must be blocked before its sink ran; an honest value must pass.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loopback import loopback_server
from serving import serving

import rasp
from rasp import guard

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from peer_kit import corpus, vulnerable

MIN_EXPLOITING = 25  # per family: fewer and the family's score would mean little
MARKER = vulnerable.CANARY_MARKER

# label -> why our agent lets this exploiting attack through (strict: a fixed gap fails).
_NORMALIZED = (
    "the app normalizes the joined path (os.path.normpath) before opening it: the '..' the"
    " input brought are gone and the input no longer appears in the opened path (a known"
    " limit, xfail in tests/detectors/test_path.py)"
)
KNOWN_MISSES: dict[str, str] = {
    "path-normpath-parent-secret": _NORMALIZED,
    "path-normpath-deep-passwd": _NORMALIZED,
    "path-normpath-through-subdir": _NORMALIZED,
}
# label -> why our agent blocks this honest value (strict, as above).
KNOWN_FLAGS: dict[str, str] = {}


@dataclass(frozen=True)
class Outcome:
    case: corpus.Case
    exploited: bool  # the oracle, without an agent at work
    detail: str
    blocked: bool
    reached: bool  # the sink ran in the protected request


def _run(case: corpus.Case, sandbox: Path, canary_url: str, port: int) -> Outcome:
    value = corpus.materialize(case, port)
    kwargs: dict[str, Any] = {"sandbox": sandbox, "canary_url": canary_url}
    judged = vulnerable.handle(case.family, case.context, value, oracle=True, **kwargs)
    assert judged["reached"] or judged["exploited"] is False, (case.label, judged)
    blocked = False
    with serving(f"/case/{case.family}/{case.context}", v=value):
        try:
            vulnerable.handle(case.family, case.context, value, oracle=False, **kwargs)
        except rasp.AttackBlocked:
            blocked = True
    return Outcome(case, bool(judged["exploited"]), str(judged["detail"]), blocked,
                   vulnerable.last_reached())  # fmt: skip


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """Every case of the corpus, judged and served once for the whole module."""
    body = f'{{"marker": "{MARKER}"}}'.encode()
    with loopback_server(body=body) as (canary_url, _hits):
        yield from _judged_corpus(tmp_path_factory, canary_url)


def _judged_corpus(
    tmp_path_factory: pytest.TempPathFactory, canary_url: str
) -> Iterator[dict[str, Outcome]]:
    port = int(canary_url.rsplit(":", 1)[1])
    sandbox = tmp_path_factory.mktemp("peer-corpus") / "sandbox"
    vulnerable.prepare(sandbox, canary_url)
    rasp.protect(rasp.Config())
    # Module scope runs before the function-scoped fixture that sets this: set it here too.
    raising, guard.raise_internal_errors = guard.raise_internal_errors, True
    try:
        yield {case.label: _run(case, sandbox, canary_url, port) for case in corpus.CASES}
    finally:
        guard.raise_internal_errors = raising
        rasp.unprotect()


def _listing(found: list[Outcome]) -> str:
    return "\n".join(f"  {o.case.label} {o.case.value!r}: {o.detail}" for o in found)


def test_the_corpus_is_well_formed() -> None:
    labels = Counter(case.label for case in corpus.CASES)
    assert [label for label, n in labels.items() if n > 1] == []
    for case in corpus.CASES:
        assert case.kind in ("attack", "honest"), case
        assert case.context in vulnerable.CONTEXTS[case.family], case
        assert case.context.replace("_", "").isalnum(), case  # a URL path segment
        if case.kind == "attack":
            assert not case.context.startswith("safe_"), case
    for family in vulnerable.CONTEXTS:
        kinds = Counter(case.kind for case in corpus.CASES if case.family == family)
        assert 40 <= kinds["attack"] <= 80 and 40 <= kinds["honest"] <= 80, (family, kinds)
    assert set(KNOWN_MISSES) | set(KNOWN_FLAGS) <= set(labels)


def test_ssrf_values_stay_on_loopback() -> None:
    for case in corpus.CASES:
        if case.family == "ssrf" and case.kind == "attack":
            assert corpus.PORT in case.value or case.context == "host_port", case


def test_each_family_has_enough_exploiting_attacks(outcomes: dict[str, Outcome]) -> None:
    exploiting = Counter(o.case.family for o in outcomes.values() if o.exploited)
    assert all(exploiting[family] >= MIN_EXPLOITING for family in vulnerable.CONTEXTS), exploiting


def test_honest_values_exploit_nothing(outcomes: dict[str, Outcome]) -> None:
    wrong = [o for o in outcomes.values() if o.case.kind == "honest" and o.exploited]
    assert not wrong, "honest cases the oracle calls exploits:\n" + _listing(wrong)
    refused = [o for o in outcomes.values() if "OffMachine" in o.detail]
    assert not refused, "cases that tried to leave the machine:\n" + _listing(refused)


def test_exploiting_attacks_are_blocked_before_the_sink(outcomes: dict[str, Outcome]) -> None:
    missed = [
        o
        for o in outcomes.values()
        if o.exploited and (not o.blocked or o.reached) and o.case.label not in KNOWN_MISSES
    ]
    assert not missed, "exploiting attacks not blocked in time:\n" + _listing(missed)


def test_honest_values_pass(outcomes: dict[str, Outcome]) -> None:
    flagged = [
        o
        for o in outcomes.values()
        if o.case.kind == "honest" and o.blocked and o.case.label not in KNOWN_FLAGS
    ]
    assert not flagged, "honest values blocked:\n" + _listing(flagged)
    unreached = [
        o
        for o in outcomes.values()
        if o.case.kind == "honest" and not o.reached and o.case.label not in KNOWN_FLAGS
    ]
    assert not unreached, "honest values whose sink never ran:\n" + _listing(unreached)


def test_known_gaps_are_still_gaps(outcomes: dict[str, Outcome]) -> None:
    fixed = [label for label in KNOWN_MISSES if outcomes[label].blocked]
    fixed += [label for label in KNOWN_FLAGS if not outcomes[label].blocked]
    stale = [label for label in KNOWN_MISSES if not outcomes[label].exploited]
    assert not fixed, f"no longer a gap, remove from the known lists: {fixed}"
    assert not stale, f"no longer an exploit by the oracle: {stale}"
