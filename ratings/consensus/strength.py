"""Mean preference strength per item."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ratings.consensus.votes import iter_items


@dataclass(frozen=True)
class StrengthResult:
    """Aggregate of numeric preference strengths for one item.

    ``mean`` and ``std`` (population, ``ddof=0``) of the votes; ``label`` is ``"A"`` if
    ``mean < -tie_margin``, ``"B"`` if ``mean > tie_margin``, else ``"tie"``;
    ``confidence`` is the share of votes that agree with ``label`` (negative votes for
    ``"A"``, positive for ``"B"``, votes with ``|v| <= tie_margin`` for ``"tie"``).
    With no votes, ``mean``, ``std`` and ``label`` are ``None`` and ``confidence`` is 0.
    """

    mean: float | None
    std: float | None
    label: str | None
    confidence: float
    n_votes: int


def mean_strength(
    votes_by_item: Mapping[Hashable, Iterable[float]] | Sequence[Iterable[float]],
    *,
    tie_margin: float = 0.0,
) -> dict[Hashable, StrengthResult]:
    """Average signed preference strengths per item (negative = A better, positive = B).

    Works for any symmetric numeric scale (e.g. ``-2..2`` or ``-3..3``). Raises
    ``ValueError`` for non-finite votes or a negative ``tie_margin``.
    """
    if not (math.isfinite(tie_margin) and tie_margin >= 0):
        raise ValueError("tie_margin must be finite and >= 0")
    out: dict[Hashable, StrengthResult] = {}
    for item, values in iter_items(votes_by_item):
        v = np.asarray(list(values), dtype=np.float64)
        if v.size == 0:
            out[item] = StrengthResult(None, None, None, 0.0, 0)
            continue
        if not np.all(np.isfinite(v)):
            raise ValueError(f"non-finite preference strength for item {item!r}")
        mean = float(v.mean())
        std = float(v.std())
        if mean < -tie_margin:
            label, agree = "A", v < 0
        elif mean > tie_margin:
            label, agree = "B", v > 0
        else:
            label, agree = "tie", np.abs(v) <= tie_margin
        out[item] = StrengthResult(mean, std, label, float(agree.mean()), int(v.size))
    return out
