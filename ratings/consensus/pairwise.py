"""The one consensus rule for pairwise preferences (unweighted or weighted majority).

Used by the exporters' ``majority`` and ``weighted`` aggregation and by gold promotion, so a
pair exported as "A wins" is the pair a lead can promote to gold as "A wins".

A vote is the sign of a preference: negative for A, positive for B, 0 for a tie; a judgment
without a preference abstains. A side wins when it has more votes than the other side and
at least as many as "tie"; anything else is a tie. The outcome is ``clear`` when the winner
has strictly more votes than each other outcome; gold promotion takes only clear outcomes
(``[A, A, tie, tie]`` exports as A but is not promoted; ``[A, B]`` exports as a tie and is not
promoted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PairConsensus:
    winner: str  # "a", "b" or "tie"
    clear: bool
    a: float  # the (weighted) votes for A, for a tie and for B
    tie: float
    b: float

    @property
    def total(self) -> float:
        return self.a + self.tie + self.b


def pairwise_consensus(
    preferences: Iterable[int | None], weights: Iterable[float] | None = None
) -> PairConsensus:
    """The consensus of one pair's preferences, each weighted by ``weights`` (default 1)."""
    a = t = b = 0.0
    weights_ = iter(weights) if weights is not None else None
    for preference in preferences:
        weight = next(weights_) if weights_ is not None else 1.0
        if preference is None:
            continue
        if preference < 0:
            a += weight
        elif preference > 0:
            b += weight
        else:
            t += weight
    if a > b and a >= t:
        return PairConsensus("a", a > t, a, t, b)
    if b > a and b >= t:
        return PairConsensus("b", b > t, a, t, b)
    return PairConsensus("tie", t > a and t > b, a, t, b)
