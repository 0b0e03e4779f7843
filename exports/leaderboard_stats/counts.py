"""Battles aggregated per pair, side and outcome; the win/tie/loss matrix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exports.leaderboard_stats.common import OUTCOMES


@dataclass(frozen=True)
class PairCounts:
    """Battles aggregated per unordered model pair and display side.

    Cell ``k`` describes pair ``(models[i[k]], models[j[k]])`` with ``i[k] < j[k]``:

    * ``side[k]`` is ``+1`` if model ``i`` was shown on the left, ``-1`` if model ``j``
      was, ``0`` if the position is unknown;
    * ``wins_i[k]``, ``wins_j[k]``, ``ties[k]`` are the outcome counts.

    Each ``(i, j, side)`` triple occurs at most once, cells are sorted by
    ``(i, j, side)`` and models are sorted, so the structure is deterministic for a given
    multiset of battles (the order of the battles does not matter).
    """

    models: tuple[Hashable, ...]
    i: np.ndarray
    j: np.ndarray
    side: np.ndarray
    wins_i: np.ndarray
    wins_j: np.ndarray
    ties: np.ndarray

    @property
    def n(self) -> np.ndarray:
        """Number of battles per cell."""
        return self.wins_i + self.wins_j + self.ties

    @property
    def n_cells(self) -> int:
        """Number of distinct (pair, side) cells; each carries three outcome counts."""
        return int(self.i.size)

    @property
    def n_battles(self) -> int:
        """Total number of battles."""
        return int(round(float(self.n.sum())))

    @property
    def n_models(self) -> int:
        return len(self.models)

    def with_counts(self, wins_i: np.ndarray, wins_j: np.ndarray, ties: np.ndarray) -> PairCounts:
        """Same cells with other outcome counts (used for resampling)."""
        return PairCounts(self.models, self.i, self.j, self.side, wins_i, wins_j, ties)


def _sorted_names(names: Iterable[Hashable]) -> tuple[Hashable, ...]:
    names = list(names)
    try:
        return tuple(sorted(names))
    except TypeError:
        return tuple(sorted(names, key=repr))


def _normalise_outcome(outcome: Any) -> str:
    key = str(outcome).strip().lower()
    if key not in OUTCOMES:
        raise ValueError(f"outcome must be 'A', 'B' or 'tie', got {outcome!r}")
    return OUTCOMES[key]


def outcome_counts(battles: Iterable[Sequence[Any]] | PairCounts) -> PairCounts:
    """Aggregate battles into per-(pair, side) outcome counts.

    ``battles`` is an iterable of ``(model_a, model_b, outcome)`` or
    ``(model_a, model_b, outcome, left_is_a)``; a :class:`PairCounts` is returned as is.
    Outcomes are case-insensitive ``"A"``, ``"B"``, ``"tie"``; ``left_is_a`` is ``True``
    (model_a shown left), ``False`` (model_b shown left) or ``None`` (unknown).

    The input is read once; afterwards only distinct battles are processed.

    Raises ``ValueError`` for an unknown outcome, a model compared with itself, or a
    battle with fewer than 3 or more than 4 fields.
    """
    if isinstance(battles, PairCounts):
        return battles

    raw: Counter[tuple[Any, ...]] = Counter(tuple(b) for b in battles)

    # Normalise distinct battles only.
    norm: Counter[tuple[Hashable, Hashable, str, bool | None]] = Counter()
    for key, count in raw.items():
        if len(key) == 3:
            a, b, outcome = key
            left = None
        elif len(key) == 4:
            a, b, outcome, left = key
            left = None if left is None else bool(left)
        else:
            raise ValueError(f"a battle has 3 or 4 fields, got {key!r}")
        if a == b:
            raise ValueError(f"model {a!r} compared with itself")
        norm[(a, b, _normalise_outcome(outcome), left)] += count

    models = _sorted_names({m for key in norm for m in key[:2]})
    index = {m: k for k, m in enumerate(models)}

    cells: dict[tuple[int, int, int], list[int]] = {}
    for (a, b, outcome, left), count in norm.items():
        ia, ib = index[a], index[b]
        if ia < ib:
            i, j = ia, ib
            slot = {"A": 0, "B": 1, "tie": 2}[outcome]
            side = 0 if left is None else (1 if left else -1)
        else:
            i, j = ib, ia
            slot = {"A": 1, "B": 0, "tie": 2}[outcome]
            side = 0 if left is None else (-1 if left else 1)
        cells.setdefault((i, j, side), [0, 0, 0])[slot] += count

    keys = sorted(cells)
    arr = np.array([cells[k] for k in keys], dtype=np.float64).reshape(-1, 3)
    idx = np.array(keys, dtype=np.int64).reshape(-1, 3)
    return PairCounts(
        models=models,
        i=idx[:, 0].copy(),
        j=idx[:, 1].copy(),
        side=idx[:, 2].astype(np.int8),
        wins_i=arr[:, 0].copy(),
        wins_j=arr[:, 1].copy(),
        ties=arr[:, 2].copy(),
    )


@dataclass(frozen=True)
class WinTieLoss:
    """Head-to-head tables over ordered model pairs.

    ``wins[a, b]`` is how often ``models[a]`` beat ``models[b]``, ``ties[a, b]`` (symmetric)
    how often they tied and ``losses[a, b] == wins[b, a]``. Display side is ignored.
    """

    models: tuple[Hashable, ...]
    wins: np.ndarray
    ties: np.ndarray
    losses: np.ndarray

    @property
    def games(self) -> np.ndarray:
        """Number of battles per ordered pair (symmetric)."""
        return self.wins + self.ties + self.losses

    def as_dict(self) -> dict[tuple[Hashable, Hashable], dict[str, int]]:
        """``{(a, b): {"wins": .., "ties": .., "losses": ..}}`` for pairs that met."""
        out: dict[tuple[Hashable, Hashable], dict[str, int]] = {}
        games = self.games
        for a, b in zip(*np.nonzero(games), strict=True):
            out[(self.models[a], self.models[b])] = {
                "wins": int(self.wins[a, b]),
                "ties": int(self.ties[a, b]),
                "losses": int(self.losses[a, b]),
            }
        return out


def win_tie_loss_matrix(battles: Iterable[Sequence[Any]] | PairCounts) -> WinTieLoss:
    """Win/tie/loss counts per ordered model pair (see :class:`WinTieLoss`)."""
    counts = outcome_counts(battles)
    m = counts.n_models
    wins = np.zeros((m, m), dtype=np.int64)
    ties = np.zeros((m, m), dtype=np.int64)
    np.add.at(wins, (counts.i, counts.j), counts.wins_i.astype(np.int64))
    np.add.at(wins, (counts.j, counts.i), counts.wins_j.astype(np.int64))
    np.add.at(ties, (counts.i, counts.j), counts.ties.astype(np.int64))
    ties = ties + ties.T
    return WinTieLoss(models=counts.models, wins=wins, ties=ties, losses=wins.T.copy())
