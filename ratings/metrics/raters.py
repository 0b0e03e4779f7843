"""Per-rater quality indicators: leave-one-out consensus, position bias, straight-lining,
label-distribution divergence. Plain data in, plain data out.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from ._data import Level, check_level, counts_by_row, encode, is_missing, require_rectangular

# ---------------------------------------------------------------------------
# Leave-one-out consensus
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LooResiduals:
    per_rater: list[tuple[np.ndarray, np.ndarray]]  # (unit indices, residuals) per rater
    observed_min: float | None
    observed_max: float | None


def _loo(ratings: Sequence[Sequence[Any]], level: str) -> _LooResiduals:
    check_level(level)
    enc = encode(ratings, numeric=level != "nominal")
    n_raters = require_rectangular(enc, "units' rows (one entry per rater)")
    codes = enc.codes.reshape(enc.n_rows, n_raters)
    rated = codes >= 0
    per_unit = rated.sum(axis=1)
    # A rating is scored only if at least one other rater rated the same unit.
    scored = rated & (per_unit >= 2)[:, None]
    if level == "nominal":
        counts = counts_by_row(enc)
        # The rater agrees with the others' majority (ties: with one of the tied modes) exactly
        # when N_x - 1 >= N_c for every other category c, i.e. when the rater's label x is the
        # unique mode of the unit's counts including the rater.
        top = counts.max(axis=1, initial=0)
        unique_mode = (counts == top[:, None]).sum(axis=1) == 1
        mode = counts.argmax(axis=1) if counts.size else np.zeros(enc.n_rows, dtype=np.int64)
        agree = unique_mode[:, None] & (codes == mode[:, None])
        residuals = np.where(agree, 0.0, 1.0)
        low = high = None
    else:
        assert enc.numeric_domain is not None
        domain = enc.numeric_domain
        if domain.size:
            values = np.where(rated, domain[np.maximum(codes, 0)], 0.0)
            low, high = float(domain.min()), float(domain.max())
        else:
            values = np.zeros(codes.shape)
            low = high = None
        totals = values.sum(axis=1)
        others = np.maximum(per_unit - 1, 1)[:, None]
        residuals = values - (totals[:, None] - values) / others
    per_rater = []
    for j in range(n_raters):
        units = np.flatnonzero(scored[:, j])
        per_rater.append((units, residuals[units, j]))
    return _LooResiduals(per_rater, low, high)


def loo_residuals(
    ratings: Sequence[Sequence[Any]], level: Level = "nominal"
) -> list[list[tuple[int, float]]]:
    """Per rater, the residuals against the leave-one-out consensus of the other raters.

    ``ratings`` is units × raters (one entry per rater in every row, ``None`` missing). For
    each rater (column) the result lists ``(unit_index, residual)`` for every unit that rater
    rated and at least one other rater also rated, in unit order. Nominal: residual 0.0 if
    the rater's label is a mode of the other raters' labels on the unit (any of the tied
    modes counts), else 1.0. Ordinal/interval/ratio: the signed difference between the
    rater's value and the mean of the other raters' values (positive = more lenient/higher).
    """
    loo = _loo(ratings, level)
    return [list(zip(units.tolist(), res.tolist(), strict=True)) for units, res in loo.per_rater]


def loo_consensus_agreement(
    ratings: Sequence[Sequence[Any]],
    level: Level = "nominal",
    *,
    scale_range: tuple[float, float] | None = None,
) -> list[float | None]:
    """Per rater, agreement in [0, 1] with the leave-one-out consensus of the other raters.

    Nominal: share of the rater's scored units where the label is a mode of the others'
    labels (see :func:`loo_residuals`). Ordinal/interval/ratio: 1 - mean |residual| / range,
    where the residual is the difference to the others' mean and the range is
    ``scale_range[1] - scale_range[0]`` if given, else the observed max - min of all ratings.
    ``None`` for a rater with no scored unit, and for every rater if the range is 0.
    """
    loo = _loo(ratings, level)
    if level == "nominal":
        return [1.0 - float(res.mean()) if res.size else None for _, res in loo.per_rater]
    if scale_range is not None:
        low, high = (float(v) for v in scale_range)
        if not high > low:
            raise ValueError("scale_range must be (low, high) with high > low")
        if loo.observed_min is not None and (loo.observed_min < low or loo.observed_max > high):
            raise ValueError("ratings fall outside scale_range")
        span = high - low
    elif loo.observed_min is None:
        return [None for _ in loo.per_rater]
    else:
        span = loo.observed_max - loo.observed_min
    if span == 0:
        return [None for _ in loo.per_rater]
    return [
        1.0 - float(np.abs(res).mean()) / span if res.size else None for _, res in loo.per_rater
    ]


# ---------------------------------------------------------------------------
# Position bias, straight-lining, label distribution
# ---------------------------------------------------------------------------


def position_bias(left_picks: int, decisive: int) -> dict[str, float | int | None]:
    """Share of left (first-shown) picks among decisive pairwise judgments, with a test.

    Returns ``{"share": left_picks / decisive, "n": decisive, "p_value": p}`` where ``p`` is
    the two-sided exact binomial test of share = 0.5 (``scipy.stats.binomtest``). With no
    decisive judgment, share and p_value are ``None``. Raises ``ValueError`` unless
    0 <= left_picks <= decisive.
    """
    for name, value in (("left_picks", left_picks), ("decisive", decisive)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer")
    if not 0 <= left_picks <= decisive:
        raise ValueError("need 0 <= left_picks <= decisive")
    if decisive == 0:
        return {"share": None, "n": 0, "p_value": None}
    test = stats.binomtest(int(left_picks), int(decisive), 0.5, alternative="two-sided")
    return {"share": left_picks / decisive, "n": int(decisive), "p_value": float(test.pvalue)}


_is_missing = is_missing


def straight_lining_share(score_rows: Sequence[Sequence[Any]]) -> float | None:
    """Share of judgments whose criterion scores are all identical.

    Each row holds one judgment's scores over several criteria; ``None``/NaN scores are
    ignored. Only judgments with at least two scored criteria count. ``None`` if there is no
    such judgment.
    """
    eligible = flat = 0
    for row in score_rows:
        scores = [v for v in row if not _is_missing(v)]
        if len(scores) < 2:
            continue
        eligible += 1
        flat += all(v == scores[0] for v in scores[1:])
    return flat / eligible if eligible else None


def _aligned_counts(
    counts_a: Sequence[float] | Mapping[Hashable, float],
    counts_b: Sequence[float] | Mapping[Hashable, float],
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(counts_a, Mapping) != isinstance(counts_b, Mapping):
        raise TypeError("pass both counts as mappings or both as sequences")
    if isinstance(counts_a, Mapping) and isinstance(counts_b, Mapping):
        keys = list(dict.fromkeys([*counts_a, *counts_b]))
        a = [counts_a.get(k, 0) for k in keys]
        b = [counts_b.get(k, 0) for k in keys]
    else:
        a, b = list(counts_a), list(counts_b)
        if len(a) != len(b):
            raise ValueError("counts_a and counts_b must have the same number of categories")
    arr_a, arr_b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (np.isfinite(arr_a).all() and np.isfinite(arr_b).all()):
        raise ValueError("counts must be finite")
    if (arr_a < 0).any() or (arr_b < 0).any():
        raise ValueError("counts must be non-negative")
    return arr_a, arr_b


def _as_count(total: float) -> float | int:
    return int(total) if total.is_integer() else total


def distribution_divergence(
    counts_a: Sequence[float] | Mapping[Hashable, float],
    counts_b: Sequence[float] | Mapping[Hashable, float],
) -> dict[str, float | int | None]:
    """Compare a rater's label counts with the team's.

    Counts are parallel sequences (one entry per category) or mappings label -> count
    (missing labels count 0). Returns ``js_distance``: the Jensen-Shannon distance with
    base-2 logarithms (0 identical, 1 disjoint); ``chi2``, ``dof``, ``p_value``: the
    chi-square test of homogeneity on the 2 × k table (``scipy.stats.chi2_contingency``, with
    its default Yates correction when dof = 1) after dropping categories where both counts
    are 0; ``n_a``, ``n_b``: the totals. Everything but the totals is ``None`` if either total
    is 0; the test is ``None`` if fewer than two categories remain. For an independent
    comparison, leave the rater's own labels out of the team counts.
    """
    a, b = _aligned_counts(counts_a, counts_b)
    total_a, total_b = float(a.sum()), float(b.sum())
    result: dict[str, float | int | None] = {
        "js_distance": None,
        "chi2": None,
        "dof": None,
        "p_value": None,
        "n_a": _as_count(total_a),
        "n_b": _as_count(total_b),
    }
    if total_a == 0 or total_b == 0:
        return result
    p, q = a / total_a, b / total_b
    mid = (p + q) / 2.0
    js = (special.rel_entr(p, mid).sum() + special.rel_entr(q, mid).sum()) / (2.0 * math.log(2))
    result["js_distance"] = float(min(1.0, math.sqrt(max(0.0, float(js)))))
    keep = (a + b) > 0
    if int(keep.sum()) >= 2:
        test = stats.chi2_contingency(np.vstack([a[keep], b[keep]]))
        result["chi2"] = float(test.statistic)
        result["dof"] = int(test.dof)
        result["p_value"] = float(test.pvalue)
    return result
