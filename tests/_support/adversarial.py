"""Builders of large adversarial texts for the linear-time tests of the lexers and detectors."""

from __future__ import annotations

import random
from collections.abc import Sequence


def fill(unit: str, size: int) -> str:
    """``unit`` repeated and cut to exactly ``size`` characters."""
    return (unit * (size // len(unit) + 1))[:size]


def runs(fragments: Sequence[str], size: int, seed: int) -> str:
    """``size`` characters of runs of random ``fragments``, each repeated a random number of
    times (up to 400): long runs of one construct, then another."""
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    while length < size:
        fragment = rng.choice(fragments) * rng.randint(1, 400)
        parts.append(fragment)
        length += len(fragment)
    return "".join(parts)[:size]
