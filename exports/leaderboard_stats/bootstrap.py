"""Bootstrap intervals of the ratings and the CI-based rank."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exports.leaderboard_stats.common import (
    LN10,
    STATUS_INSUFFICIENT,
    STATUS_OK,
    single_blas_thread,
)
from exports.leaderboard_stats.counts import PairCounts, outcome_counts
from exports.leaderboard_stats.fit import BTResult, bradley_terry, comparison_components, fit_counts


def ci_rank(lower: Sequence[float] | np.ndarray, upper: Sequence[float] | np.ndarray) -> np.ndarray:
    """Confidence-interval rank (Chatbot Arena convention).

    ``rank[k] = 1 + #{m : lower[m] > upper[k]}``: a model is only ranked below the models
    that are better than it with non-overlapping intervals. Ranks start at 1 and several
    models can share a rank.
    """
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if lo.shape != hi.shape or lo.ndim != 1:
        raise ValueError("lower and upper must be 1-D arrays of the same length")
    return 1 + (lo[None, :] > hi[:, None]).sum(axis=1)


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap confidence intervals for a Bradley–Terry leaderboard.

    ``ratings`` is the point estimate on all data; ``lower``/``upper`` are percentile
    bounds of the replicate ratings at level ``confidence``; ``rank`` is the CI-based rank
    (:func:`ci_rank`). ``samples`` holds the replicate ratings (``n_used`` x models).
    Replicates whose resampled comparison graph is disconnected are skipped and counted in
    ``n_boot - n_used``. With status ``"insufficient data"`` the arrays are ``None``.
    """

    status: str
    models: tuple[Hashable, ...]
    ratings: np.ndarray | None
    lower: np.ndarray | None
    upper: np.ndarray | None
    rank: np.ndarray | None
    position_bias_elo: float | None
    position_bias_ci: tuple[float, float] | None
    confidence: float
    n_boot: int
    n_used: int
    seed: int | None
    point: BTResult
    samples: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def table(self) -> list[dict[str, Any]]:
        """Rows ``{"model", "rating", "lower", "upper", "rank"}``, best rating first."""
        if self.ratings is None or self.lower is None or self.upper is None or self.rank is None:
            return []
        rows = [
            {
                "model": m,
                "rating": float(self.ratings[k]),
                "lower": float(self.lower[k]),
                "upper": float(self.upper[k]),
                "rank": int(self.rank[k]),
            }
            for k, m in enumerate(self.models)
        ]
        return sorted(rows, key=lambda row: (row["rank"], -row["rating"]))


def bootstrap(
    data: PairCounts | Iterable[Sequence[Any]],
    n_boot: int = 1000,
    seed: int | None = 0,
    confidence: float = 0.95,
    *,
    scale: float = 400.0,
    base: float = 1000.0,
    ridge: float = 1e-6,
    position_bias: bool = True,
) -> BootstrapResult:
    """Percentile bootstrap of :func:`bradley_terry` ratings.

    Each replicate resamples the ``N`` battles with replacement, done as one multinomial
    draw of ``N`` over the (pair, side, outcome) cells with the observed proportions, so
    the cost does not grow with ``N``. Each replicate is refitted (warm-started at the
    point estimate) and centred on ``base``, like the point estimate.

    Guarantees: the result is deterministic for a given ``seed`` (an ``int``); bounds are
    finite; ``lower <= upper``; ranks follow :func:`ci_rank`.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    counts = outcome_counts(data)
    point = bradley_terry(counts, scale=scale, base=base, ridge=ridge, position_bias=position_bias)

    def failed(status_point: BTResult, n_used: int = 0) -> BootstrapResult:
        return BootstrapResult(
            status=STATUS_INSUFFICIENT,
            models=counts.models,
            ratings=status_point.ratings,
            lower=None,
            upper=None,
            rank=None,
            position_bias_elo=status_point.position_bias_elo,
            position_bias_ci=None,
            confidence=confidence,
            n_boot=n_boot,
            n_used=n_used,
            seed=seed,
            point=status_point,
        )

    if not point.ok:
        return failed(point)

    fit_b = point.position_bias_fitted
    m = counts.n_models
    k = counts.n_cells
    observed = np.concatenate([counts.wins_i, counts.wins_j, counts.ties])
    total = int(round(observed.sum()))
    probs = observed / observed.sum()

    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, probs, size=n_boot).astype(np.float64)

    to_elo = scale / LN10
    x0 = np.zeros(m - 1 + (1 if fit_b else 0))
    x0[: m - 1] = (point.ratings[1:] - point.ratings[0]) / to_elo  # type: ignore[index]
    if fit_b:
        x0[m - 1] = (point.position_bias_elo or 0.0) / to_elo

    samples = np.empty((n_boot, m))
    biases = np.empty(n_boot)
    used = np.zeros(n_boot, dtype=bool)
    with single_blas_thread():
        for r in range(n_boot):
            wi, wj, t = draws[r, :k], draws[r, k : 2 * k], draws[r, 2 * k :]
            if len(comparison_components(counts, wi + wj + t)) > 1:
                continue
            fit = fit_counts(counts, wi, wj, t, ridge=ridge, fit_b=fit_b, x0=x0)
            samples[r] = base + fit.theta * to_elo
            biases[r] = fit.b * to_elo
            used[r] = True

    n_used = int(used.sum())
    if n_used == 0:
        return failed(point)
    samples = samples[used]
    biases = biases[used]
    alpha = 1.0 - confidence
    lower = np.quantile(samples, alpha / 2, axis=0)
    upper = np.quantile(samples, 1 - alpha / 2, axis=0)
    bias_ci = None
    if fit_b:
        bias_ci = (
            float(np.quantile(biases, alpha / 2)),
            float(np.quantile(biases, 1 - alpha / 2)),
        )
    return BootstrapResult(
        status=STATUS_OK,
        models=counts.models,
        ratings=point.ratings,
        lower=lower,
        upper=upper,
        rank=ci_rank(lower, upper),
        position_bias_elo=point.position_bias_elo,
        position_bias_ci=bias_ci,
        confidence=confidence,
        n_boot=n_boot,
        n_used=n_used,
        seed=seed,
        point=point,
        samples=samples,
    )
