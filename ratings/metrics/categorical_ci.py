"""Bootstrap intervals for Fleiss' kappa, Gwet's AC1 and percent agreement, vectorised.

Resampling items only re-weights per-item sufficient statistics (each item's pair agreement,
category proportions and pair counts), and items with the same category counts have the same
statistics, so every replicate is a few weighted sums over the distinct count patterns
instead of a recomputation. The resamples are drawn as pattern multiplicities (see
``ratings.metrics.bootstrap``); given the same explicit resamples, the estimates equal
``bootstrap_ci(fleiss_kappa, rows, ...)`` and its siblings, orders of magnitude faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ratings.metrics._data import counts_by_row, encode
from ratings.metrics.bootstrap import (
    check_options,
    count_patterns,
    multiplicities_from_resamples,
    pattern_multiplicities,
    percentile_interval,
)

METRICS = ("fleiss_kappa", "gwet_ac1", "percent_agreement")


def categorical_cis(
    ratings: Sequence[Sequence[Any]],
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    *,
    min_valid_fraction: float = 0.5,
    resamples: np.ndarray | None = None,
    categories: Sequence[Any] | None = None,
) -> dict[str, tuple[float | None, float | None]]:
    """Percentile intervals of ``fleiss_kappa``, ``gwet_ac1`` and ``percent_agreement`` for
    units x raters categorical ratings (``None`` or NaN missing), resampling units.

    ``resamples`` (resamples × units unit indices) replaces the random draw; ``n_boot`` is
    then its number of rows. ``categories`` (the full scale) fixes AC1's number of
    categories, as ``gwet_ac1(..., categories=...)`` does; else each resample counts the
    categories it uses."""
    if resamples is not None:
        n_boot = int(np.shape(resamples)[0])
    check_options(n_boot, confidence, min_valid_fraction)
    enc = encode(ratings, numeric=False, value_order=categories)
    empty = dict.fromkeys(METRICS, (None, None))
    if enc.n_rows == 0:
        return empty
    counts, pattern_of_unit = count_patterns(counts_by_row(enc).astype(float))
    n_patterns = counts.shape[0]
    if resamples is None:
        units_per_pattern = np.bincount(pattern_of_unit, minlength=n_patterns)
        w = pattern_multiplicities(units_per_pattern, n_boot, seed)
    else:
        w = multiplicities_from_resamples(resamples, pattern_of_unit, n_patterns)
    # Per pattern: values, whether rated / pairable, agreeing pairs, pairs, proportions.
    m = counts.sum(axis=1)
    rated = (m >= 1).astype(float)
    pairable = (m >= 2).astype(float)
    agree_pairs = (counts * (counts - 1)).sum(axis=1)
    pairs = m * (m - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pa_unit = np.where(pairs > 0, agree_pairs / np.where(pairs > 0, pairs, 1), 0.0)
        prop = np.where(m[:, None] > 0, counts / np.where(m > 0, m, 1)[:, None], 0.0)
        n_pairable = w @ pairable
        p_a = (w @ (pa_unit * pairable)) / n_pairable
        pi = (w @ prop) / (w @ rated)[:, None]
        used = (pi > 0).sum(axis=1)
        pe_fleiss = (pi**2).sum(axis=1)
        q = float(len(categories)) if categories is not None else used
        pe_ac1 = (pi * (1 - pi)).sum(axis=1) / (q - 1)
        defined = (used >= 2) & (n_pairable > 0)
        defined_ac1 = (q >= 2) & (n_pairable > 0) if categories is not None else defined
        estimates = {
            "fleiss_kappa": np.where(defined, (p_a - pe_fleiss) / (1 - pe_fleiss), np.nan),
            "gwet_ac1": np.where(defined_ac1, (p_a - pe_ac1) / (1 - pe_ac1), np.nan),
            "percent_agreement": np.where(n_pairable > 0, (w @ agree_pairs) / (w @ pairs), np.nan),
        }
    return {
        k: percentile_interval(v, n_boot, confidence, min_valid_fraction)
        for k, v in estimates.items()
    }
