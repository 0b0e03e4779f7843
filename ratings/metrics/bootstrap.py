"""Percentile bootstrap confidence intervals that resample units (items).

``bootstrap_ci`` works for any statistic on units × raters data by re-running it on every
resample. ``krippendorff_alpha_ci`` (and ``categorical_ci.categorical_cis``) give the same
kind of interval without re-running anything: the statistic is a ratio of sums of per-unit
contributions, and units with the same value counts (the same *pattern*) contribute the same,
so a resample is fully described by how many drawn units fall in each pattern.

Drawing n units with replacement puts Multinomial(n, n_p / n) of them in pattern p, where n_p
is the number of units with that pattern: the fast paths draw these pattern multiplicities
directly (``pattern_multiplicities``), which costs resamples × patterns instead of resamples ×
units random numbers (a few hundred patterns for a 5-point scale and five raters, against
hundreds of thousands of units). The bootstrap distribution is exactly the one of resampling
the units; only the random stream differs from ``bootstrap_ci``'s. Given the same explicit
resamples (``resamples=``, arrays of unit indices), the fast paths and ``bootstrap_ci`` give
the same estimates, which is how the tests check them against each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import numpy as np

from ._data import Level
from .agreement import alpha_data, difference_matrix

# Upper bound on the entries of one block of resampled indices (and of the matching
# resamples × units weight matrix), to keep memory flat for large inputs.
_BLOCK_ELEMENTS = 2_000_000


def check_options(n_boot: int, confidence: float, min_valid_fraction: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError("n_boot must be a positive integer")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be strictly between 0 and 1")
    if not 0.0 <= min_valid_fraction <= 1.0:
        raise ValueError("min_valid_fraction must be between 0 and 1")


def resample_index_blocks(n_units: int, n_boot: int, seed: int | None) -> Iterator[np.ndarray]:
    """Yield blocks (resamples × n_units) of unit indices drawn with replacement.

    The concatenation of the blocks is the same for a given ``(n_units, n_boot, seed)``
    whatever the block size, because rows are drawn one after another from one generator.
    """
    if n_units >= 2**31:
        raise ValueError("too many units to resample")
    rng = np.random.default_rng(seed)
    per_block = max(1, _BLOCK_ELEMENTS // max(n_units, 1))
    done = 0
    while done < n_boot:
        size = min(per_block, n_boot - done)
        yield rng.integers(0, n_units, size=(size, n_units), dtype=np.int32)
        done += size


def pattern_multiplicities(
    units_per_pattern: np.ndarray, n_boot: int, seed: int | None
) -> np.ndarray:
    """Resamples × patterns: how many of the ``n`` units drawn with replacement (``n`` = the
    number of units) fall in each pattern, for ``n_boot`` resamples.

    One multinomial draw per resample, exactly the distribution of counting the patterns of
    ``n`` units drawn uniformly with replacement. Deterministic for a given integer seed.
    """
    counts = np.asarray(units_per_pattern, dtype=np.int64)
    n = int(counts.sum())
    rng = np.random.default_rng(seed)
    if n == 0:
        return np.zeros((n_boot, counts.shape[0]))
    return rng.multinomial(n, counts / n, size=n_boot).astype(float)


def multiplicities_from_resamples(
    resamples: np.ndarray, pattern_of_unit: np.ndarray, n_patterns: int
) -> np.ndarray:
    """Resamples × patterns counts of explicit resamples (rows of drawn unit indices)."""
    drawn = np.asarray(resamples, dtype=np.int64)
    if drawn.ndim != 2 or drawn.shape[1] != pattern_of_unit.shape[0]:
        raise ValueError("resamples must be a resamples x units array of unit indices")
    if drawn.size and (drawn.min() < 0 or drawn.max() >= pattern_of_unit.shape[0]):
        raise ValueError("resamples hold an index outside the units")
    rows = np.arange(drawn.shape[0])[:, None] * n_patterns
    flat = (rows + pattern_of_unit[drawn]).ravel()
    return (
        np.bincount(flat, minlength=drawn.shape[0] * n_patterns)
        .reshape(drawn.shape[0], n_patterns)
        .astype(float)
    )


def percentile_interval(
    estimates: np.ndarray, n_boot: int, confidence: float, min_valid_fraction: float
) -> tuple[float | None, float | None]:
    estimates = estimates[np.isfinite(estimates)]
    needed = max(2, math.ceil(min_valid_fraction * n_boot))
    if estimates.shape[0] < needed:
        return None, None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    statistic: Callable[[list[Any]], float | None],
    units: Sequence[Any],
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    *,
    min_valid_fraction: float = 0.5,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of ``statistic`` by resampling units with replacement.

    ``units`` is a list of per-unit rows (units × raters, e.g. what :func:`fleiss_kappa`
    takes) and ``statistic`` is called with a resampled list of those rows. Resamples where the
    statistic is undefined (``None`` or NaN) are dropped; if fewer than
    ``max(2, min_valid_fraction * n_boot)`` remain the result is ``(None, None)``. The bounds
    are the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles (numpy's linear
    interpolation) of the remaining estimates. Deterministic for a given integer ``seed``.
    """
    check_options(n_boot, confidence, min_valid_fraction)
    rows = list(units)
    if not rows:
        return None, None
    estimates: list[float] = []
    for block in resample_index_blocks(len(rows), n_boot, seed):
        for indices in block.tolist():
            value = statistic([rows[i] for i in indices])
            estimates.append(math.nan if value is None else float(value))
    return percentile_interval(np.asarray(estimates), n_boot, confidence, min_valid_fraction)


def krippendorff_alpha_ci(
    reliability_data: Sequence[Sequence[Any]],
    level: Level = "nominal",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    *,
    value_order: Sequence[Hashable] | None = None,
    min_valid_fraction: float = 0.5,
    resamples: np.ndarray | None = None,
) -> tuple[float | None, float | None]:
    """Bootstrap interval of Krippendorff's alpha, resampling units (columns), vectorised.

    Each resample is a vector of multiplicities w_p of the units' value-count patterns (see
    the module docstring); with a pattern's value counts n_pc and m_p values, the resampled
    totals are n*_c = sum_p w_p n_pc and the observed-disagreement sum is
    sum_p w_p sum_ck n_pc n_pk delta_ck / (m_p - 1). For the ordinal level delta depends on
    the resampled totals, so it is rebuilt per resample from mid-ranks. Units with fewer than
    two values are drawn but contribute nothing, exactly as in the full computation.
    Undefined resamples are dropped as in ``bootstrap_ci``. ``resamples`` (resamples × units
    unit indices) replaces the random draw; ``n_boot`` is then its number of rows, and the
    estimates equal ``bootstrap_ci``'s on the same resamples.
    """
    if resamples is not None:
        n_boot = int(np.shape(resamples)[0])
    check_options(n_boot, confidence, min_valid_fraction)
    data = alpha_data(reliability_data, level, value_order)
    n_units = data.n_units
    n_c = data.counts.sum(axis=0)
    if n_units == 0 or int((n_c > 0).sum()) < 2:
        return None, None  # every resample would be undefined too
    patterns, pattern_of_unit = count_patterns(data.counts)
    n_patterns = patterns.shape[0]
    if resamples is None:
        units_per_pattern = np.bincount(pattern_of_unit, minlength=n_patterns)
        multiplicity = pattern_multiplicities(units_per_pattern, n_boot, seed)
    else:
        multiplicity = multiplicities_from_resamples(resamples, pattern_of_unit, n_patterns)
    m = patterns.sum(axis=1)
    weight = np.divide(1.0, m - 1.0, out=np.zeros_like(m), where=m >= 2)
    totals = multiplicity @ patterns  # resamples × values: n*_c
    n = totals.sum(axis=1)
    if level == "ordinal":
        # delta_ck = (r_c - r_k)^2 with the resample's mid-ranks r (centred to keep the sums
        # small); sum_ck n_c n_k (r_c - r_k)^2 = 2 (sum n * sum n r^2 - (sum n r)^2).
        ranks = np.cumsum(totals, axis=1) - totals / 2.0 - n[:, None] / 2.0
        first = patterns @ ranks.T  # patterns × resamples
        second = patterns @ (ranks**2).T
        pattern_sums = 2.0 * (m[:, None] * second - first**2) * weight[:, None]
        observed = np.einsum("bp,pb->b", multiplicity, pattern_sums)
        expected = 2.0 * (n * (totals * ranks**2).sum(axis=1) - (totals * ranks).sum(axis=1) ** 2)
    else:
        delta = difference_matrix(level, data.values, n_c)
        per_pattern = ((patterns @ delta) * patterns).sum(axis=1) * weight
        observed = multiplicity @ per_pattern
        expected = ((totals @ delta) * totals).sum(axis=1)
    defined = (totals > 0).sum(axis=1) >= 2
    alpha = np.full(n_boot, np.nan)
    alpha[defined] = 1.0 - (n[defined] - 1.0) * observed[defined] / expected[defined]
    return percentile_interval(alpha, n_boot, confidence, min_valid_fraction)


def count_patterns(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a units × values count matrix and the pattern index of each unit."""
    whole = counts.astype(np.int64)
    base = int(whole.max(initial=0)) + 1
    if whole.shape[1] * math.log2(base) < 62:
        keys = whole @ (base ** np.arange(whole.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return counts[first], inverse.reshape(-1).astype(np.int32)
    patterns, inverse = np.unique(whole, axis=0, return_inverse=True)
    return patterns.astype(float), inverse.reshape(-1).astype(np.int32)
