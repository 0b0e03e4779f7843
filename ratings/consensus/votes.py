"""Vote counting: majority and reliability-weighted votes."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

TiePolicy = Literal["none", "first", "random"]
_TIE_POLICIES = ("none", "first", "random")


def iter_items(votes_by_item: Mapping[Any, Any] | Sequence[Any]) -> Iterable[tuple[Any, Any]]:
    if isinstance(votes_by_item, Mapping):
        return votes_by_item.items()
    return enumerate(votes_by_item)


@dataclass(frozen=True)
class VoteResult:
    """Outcome of a (weighted) vote on one item.

    ``label`` is the winning label, or ``None`` when there are no votes (or no weight) or
    the top labels tie under ``tie_policy="none"``. ``confidence`` is the winner's share of
    the votes (of the total weight for weighted votes), in ``[0, 1]``; on an unresolved tie
    it is the share of each tied top label. ``support`` maps each label to its vote count
    (or weight), in order of first appearance.
    """

    label: Hashable | None
    confidence: float
    n_votes: int
    support: dict[Hashable, float]
    tied: bool = False


def _decide(
    support: dict[Hashable, float],
    n_votes: int,
    tie_policy: str,
    rng: np.random.Generator | None,
) -> VoteResult:
    total = sum(support.values())
    if not support or total <= 0:
        return VoteResult(None, 0.0, n_votes, support)
    best = max(support.values())
    top = [label for label, v in support.items() if v == best]
    confidence = float(best / total)
    if len(top) == 1:
        return VoteResult(top[0], confidence, n_votes, support)
    if tie_policy == "first":
        return VoteResult(top[0], confidence, n_votes, support, tied=True)
    if tie_policy == "random":
        assert rng is not None
        return VoteResult(top[int(rng.integers(len(top)))], confidence, n_votes, support, True)
    return VoteResult(None, confidence, n_votes, support, tied=True)


def _check_tie_policy(tie_policy: str) -> None:
    if tie_policy not in _TIE_POLICIES:
        raise ValueError(f"tie_policy must be one of {_TIE_POLICIES}, got {tie_policy!r}")


def majority_vote(
    votes_by_item: Mapping[Hashable, Iterable[Hashable]] | Sequence[Iterable[Hashable]],
    *,
    tie_policy: TiePolicy = "none",
    seed: int | None = 0,
) -> dict[Hashable, VoteResult]:
    """Plurality vote per item.

    ``votes_by_item`` maps an item to its labels (a sequence is keyed by position).
    Ties between the top labels are resolved by ``tie_policy``: ``"none"`` gives
    ``label=None``; ``"first"`` picks the tied label that received its first vote earliest;
    ``"random"`` picks one uniformly with a generator seeded by ``seed`` (deterministic for
    an ``int`` seed and a fixed item order). Items with no votes get ``label=None`` and
    ``confidence=0``.
    """
    _check_tie_policy(tie_policy)
    rng = np.random.default_rng(seed) if tie_policy == "random" else None
    out: dict[Hashable, VoteResult] = {}
    for item, labels in iter_items(votes_by_item):
        support: dict[Hashable, float] = {}
        n = 0
        for label in labels:
            support[label] = support.get(label, 0) + 1
            n += 1
        out[item] = _decide(support, n, tie_policy, rng)
    return out


def reliability_weighted_vote(
    votes_by_item: Mapping[Hashable, Iterable[tuple[Hashable, Hashable]]]
    | Sequence[Iterable[tuple[Hashable, Hashable]]],
    rater_weights: Mapping[Hashable, float],
    *,
    default_weight: float | None = None,
    tie_policy: TiePolicy = "none",
    seed: int | None = 0,
) -> dict[Hashable, VoteResult]:
    """Weighted plurality vote per item.

    ``votes_by_item`` maps an item to ``(rater, label)`` pairs; each vote counts
    ``rater_weights[rater]``. Raters missing from ``rater_weights`` get ``default_weight``
    (a ``KeyError`` if it is ``None``). Weights must be finite and non-negative; for
    log-odds weights from estimated accuracies use :func:`accuracy_to_weight`.
    ``confidence`` is the winner's share of the item's total weight; an item whose votes
    all have weight 0 gets ``label=None``. Ties follow ``tie_policy`` as in
    :func:`majority_vote` (exact float equality).
    """
    _check_tie_policy(tie_policy)
    rng = np.random.default_rng(seed) if tie_policy == "random" else None

    def weight_of(rater: Hashable) -> float:
        if rater in rater_weights:
            w = float(rater_weights[rater])
        elif default_weight is not None:
            w = float(default_weight)
        else:
            raise KeyError(f"no weight for rater {rater!r} and no default_weight")
        if not (math.isfinite(w) and w >= 0):
            raise ValueError(f"weight of rater {rater!r} must be finite and >= 0, got {w}")
        return w

    out: dict[Hashable, VoteResult] = {}
    for item, votes in iter_items(votes_by_item):
        support: dict[Hashable, float] = {}
        n = 0
        for rater, label in votes:
            support[label] = support.get(label, 0.0) + weight_of(rater)
            n += 1
        out[item] = _decide(support, n, tie_policy, rng)
    return out


def accuracy_to_weight(accuracy: float, n_classes: int, *, max_weight: float = 10.0) -> float:
    """Log-odds vote weight ``log((K - 1) * p / (1 - p))`` for a rater of accuracy ``p``.

    This is the optimal weight for a rater who is right with probability ``p`` and
    otherwise picks a wrong class uniformly. The result is clipped to ``[0, max_weight]``:
    raters at or below chance (``p <= 1/K``) get 0 and perfect raters ``max_weight``.
    """
    if n_classes < 2:
        return 0.0
    p = float(accuracy)
    if not 0.0 <= p <= 1.0:
        raise ValueError("accuracy must be in [0, 1]")
    if p >= 1.0:
        return float(max_weight)
    if p <= 0.0:
        return 0.0
    w = math.log((n_classes - 1) * p / (1.0 - p))
    return float(min(max(w, 0.0), max_weight))
