"""Chance-corrected and raw agreement coefficients.

Layouts: ``krippendorff_alpha`` takes raters × units (Krippendorff's reliability data);
the Fleiss/Gwet/percent-agreement functions take units × raters (one row per unit, rows may
differ in length); ``cohen_kappa`` takes two parallel label lists. ``None`` (or float NaN)
marks a missing rating everywhere. Each ``*_result`` function returns a :class:`MetricResult`;
the plain function returns its ``value``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._data import (
    EMPTY,
    NO_PAIRS,
    NO_RATINGS,
    ONE_CATEGORY,
    ONE_RATER,
    Level,
    MetricResult,
    check_level,
    counts_by_column,
    counts_by_row,
    encode,
    finite_or_none,
    is_missing,
    require_rectangular,
)

# ---------------------------------------------------------------------------
# Krippendorff's alpha
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlphaData:
    """Reliability data reduced to what alpha needs (shared with the bootstrap fast path).

    ``counts`` is units × values (float); rows of units with fewer than two values are zero,
    because such units are not pairable and contribute nothing. ``m`` is the number of
    pairable values per unit (0 for the others).
    """

    counts: np.ndarray
    m: np.ndarray
    values: np.ndarray | None
    n_raters: int  # raters with at least one rating
    n_ratings: int = -1  # ratings given (-1: not counted)

    @property
    def n_units(self) -> int:
        return int(self.counts.shape[0])


def alpha_data(
    reliability_data: Sequence[Sequence[Any]],
    level: str,
    value_order: Sequence[Hashable] | None = None,
) -> AlphaData:
    """Validate reliability data (raters × units) and build the unit-by-value count matrix."""
    check_level(level)
    if value_order is not None and level in ("interval", "ratio"):
        raise ValueError("value_order only applies to the nominal and ordinal levels")
    # Ordinal labels need not be numbers when value_order gives their order.
    numeric = level in ("interval", "ratio") or (level == "ordinal" and value_order is None)
    enc = encode(reliability_data, numeric=numeric, value_order=value_order)
    n_units = require_rectangular(enc, "raters' rows")
    counts = counts_by_column(enc, n_units).astype(float)
    m = counts.sum(axis=1)
    unpairable = m < 2
    counts[unpairable] = 0.0
    m[unpairable] = 0.0
    values = enc.numeric_domain
    if level == "ratio" and values is not None and (values < 0).any():
        raise ValueError("the ratio level needs non-negative ratings")
    return AlphaData(
        counts=counts,
        m=m,
        values=values,
        n_raters=enc.n_rated_rows(),
        n_ratings=int((enc.codes >= 0).sum()),
    )


def difference_matrix(level: str, values: np.ndarray | None, n_c: np.ndarray) -> np.ndarray:
    """Squared difference function delta^2(c, k) of Krippendorff (2011) for each value pair.

    ``n_c`` are the pairable-value totals, which the ordinal metric depends on. The ordinal
    metric (sum of n_g for g from c to k, minus (n_c + n_k)/2, squared) equals the squared
    difference of mid-ranks r_c = n_1 + ... + n_c - n_c/2, which is how it is computed here.
    """
    if level == "nominal":
        return 1.0 - np.eye(n_c.shape[0])
    if level == "ordinal":
        ranks = np.cumsum(n_c) - n_c / 2.0
        return (ranks[:, None] - ranks[None, :]) ** 2
    assert values is not None
    diff = values[:, None] - values[None, :]
    if level == "interval":
        return diff**2
    total = values[:, None] + values[None, :]
    ratio = np.divide(diff, total, out=np.zeros_like(diff), where=total != 0)
    return ratio**2


def _alpha_undefined(data: AlphaData) -> str | None:
    if data.n_units == 0:
        return EMPTY
    if not (data.m > 0).any():
        if data.n_ratings == 0:
            return NO_RATINGS
        return ONE_RATER if data.n_raters <= 1 else NO_PAIRS
    return None


def krippendorff_alpha_result(
    reliability_data: Sequence[Sequence[Any]],
    level: Level = "nominal",
    *,
    value_order: Sequence[Hashable] | None = None,
) -> MetricResult:
    """Krippendorff's alpha with its sample sizes and, if undefined, the reason.

    ``reliability_data`` is raters × units (every rater's row has one entry per unit, ``None``
    or NaN where that rater did not rate the unit). ``level`` is "nominal" (any hashable
    labels), "ordinal", "interval" or "ratio" (real numbers; ratio needs them non-negative).
    ``value_order`` optionally fixes the ordered value domain for nominal/ordinal data, which
    is how ordinal *labels* such as "low" < "mid" < "high" are given.

    Guarantees: units with fewer than two values are dropped (not pairable); the value is in
    (-inf, 1], 1 meaning perfect agreement; ``None`` when no unit has two values or only one
    distinct value occurs among pairable values (expected disagreement 0).
    """
    data = alpha_data(reliability_data, level, value_order)
    reason = _alpha_undefined(data)
    pairable = data.m > 0
    n_pairable = int(pairable.sum())
    counts = data.counts[pairable]
    n_c = counts.sum(axis=0)
    n = float(n_c.sum())
    if reason is None and int((n_c > 0).sum()) < 2:
        reason = ONE_CATEGORY
    if reason is not None:
        return MetricResult(None, reason, data.n_units, n_pairable, int(n))
    weight = 1.0 / (data.m[pairable] - 1.0)
    # Coincidence matrix o_ck = sum_u n_uc (n_uk - [c == k]) / (m_u - 1).
    coincidences = counts.T @ (counts * weight[:, None])
    coincidences -= np.diag((counts * weight[:, None]).sum(axis=0))
    delta = difference_matrix(level, data.values, n_c)
    observed = float((coincidences * delta).sum())
    expected = float(n_c @ delta @ n_c)
    value = 1.0 - (n - 1.0) * observed / expected
    return MetricResult(finite_or_none(value), None, data.n_units, n_pairable, int(n))


def krippendorff_alpha(
    reliability_data: Sequence[Sequence[Any]],
    level: Level = "nominal",
    *,
    value_order: Sequence[Hashable] | None = None,
) -> float | None:
    """Krippendorff's alpha (raters × units, ``None`` missing); ``None`` if undefined.

    See :func:`krippendorff_alpha_result` for the exact guarantees.
    """
    return krippendorff_alpha_result(reliability_data, level, value_order=value_order).value


# ---------------------------------------------------------------------------
# Fleiss' kappa, Gwet's AC1, percent agreement (units × raters)
# ---------------------------------------------------------------------------


ONE_CATEGORY_AC1 = (
    "only one category used: AC1 needs at least two categories (pass the full set as categories)"
)


@dataclass(frozen=True, slots=True)
class _Categorical:
    counts: np.ndarray  # units × categories, int
    per_unit: np.ndarray  # ratings per unit
    n_categories: int
    max_raters: int  # raters who rated anything (columns; the longest row when ragged)

    @property
    def n_units(self) -> int:
        return int(self.counts.shape[0])


def _categorical(
    ratings: Sequence[Sequence[Any]], categories: Sequence[Hashable] | None = None
) -> _Categorical:
    enc = encode(ratings, numeric=False, value_order=categories)
    counts = counts_by_row(enc)
    if enc.is_rectangular():
        max_raters = enc.n_rated_columns()
    else:
        max_raters = int(enc.lengths.max()) if enc.n_rows else 0
    return _Categorical(counts, counts.sum(axis=1), enc.n_categories, max_raters)


def _no_pairs_reason(cat: _Categorical) -> str | None:
    if cat.n_units == 0:
        return EMPTY
    if not (cat.per_unit >= 2).any():
        if not (cat.per_unit >= 1).any():
            return NO_RATINGS
        return ONE_RATER if cat.max_raters <= 1 else NO_PAIRS
    return None


def _chance_corrected(
    ratings: Sequence[Sequence[Any]],
    categories: Sequence[Hashable] | None,
    chance: Literal["fleiss", "gwet"],
) -> MetricResult:
    """Fleiss' kappa / Gwet's AC1 with missing ratings, as in Gwet's Handbook (ch. 2 and 4).

    p_a averages, over units with r_i >= 2, the share of agreeing rater pairs
    sum_k r_ik (r_ik - 1) / (r_i (r_i - 1)). The category propensities pi_k average
    r_ik / r_i over all units with at least one rating. Chance agreement is sum_k pi_k^2
    (Fleiss) or sum_k pi_k (1 - pi_k) / (q - 1) (Gwet, q categories).
    """
    cat = _categorical(ratings, categories)
    rated = cat.per_unit >= 1
    pairable = cat.per_unit >= 2
    n_pairable = int(pairable.sum())
    n_values = int(cat.per_unit[rated].sum())
    reason = _no_pairs_reason(cat)
    pi = (cat.counts[rated] / cat.per_unit[rated, None]).mean(axis=0) if rated.any() else None
    n_used = int((pi > 0).sum()) if pi is not None else 0
    if reason is None and n_used < 2:
        if chance == "fleiss":
            reason = ONE_CATEGORY
        elif cat.n_categories < 2:
            reason = ONE_CATEGORY_AC1
    if reason is not None or pi is None:
        return MetricResult(None, reason, cat.n_units, n_pairable, n_values)
    counts = cat.counts[pairable]
    r = cat.per_unit[pairable].astype(float)
    p_a = float(((counts * (counts - 1)).sum(axis=1) / (r * (r - 1))).mean())
    if chance == "fleiss":
        p_e = float((pi**2).sum())
    else:
        p_e = float((pi * (1 - pi)).sum() / (cat.n_categories - 1))
    value = (p_a - p_e) / (1 - p_e)
    return MetricResult(finite_or_none(value), None, cat.n_units, n_pairable, n_values)


def fleiss_kappa_result(ratings: Sequence[Sequence[Any]]) -> MetricResult:
    """Fleiss' kappa for units × raters categorical ratings, missing ratings allowed.

    Generalised to missing ratings as in Gwet's Handbook of Inter-Rater Reliability: p_a over
    units with at least two ratings, category proportions over all rated units. With complete
    data it equals Fleiss (1971). ``None`` if no unit has two ratings or only one category
    occurs (chance agreement 1).
    """
    return _chance_corrected(ratings, None, "fleiss")


def fleiss_kappa(ratings: Sequence[Sequence[Any]]) -> float | None:
    """Fleiss' kappa (units × raters, ``None`` missing); ``None`` if undefined."""
    return fleiss_kappa_result(ratings).value


def gwet_ac1_result(
    ratings: Sequence[Sequence[Any]], *, categories: Sequence[Hashable] | None = None
) -> MetricResult:
    """Gwet's AC1 for units × raters categorical ratings, missing ratings allowed.

    AC1 = (p_a - p_e) / (1 - p_e) with p_e = sum_k pi_k (1 - pi_k) / (q - 1). q is the number
    of categories: those observed, or ``len(categories)`` if the full category set is given
    (ratings outside it raise ``ValueError``). ``None`` if no unit has two ratings or q < 2.
    """
    return _chance_corrected(ratings, categories, "gwet")


def gwet_ac1(
    ratings: Sequence[Sequence[Any]], *, categories: Sequence[Hashable] | None = None
) -> float | None:
    """Gwet's AC1 (units × raters, ``None`` missing); ``None`` if undefined."""
    return gwet_ac1_result(ratings, categories=categories).value


def _pooled_pairs(cat: _Categorical, no_pairs: str | None = None) -> MetricResult:
    pairable = cat.per_unit >= 2
    n_pairable = int(pairable.sum())
    counts = cat.counts[pairable]
    r = cat.per_unit[pairable]
    n_values = int(r.sum())
    reason = _no_pairs_reason(cat)
    if reason in (NO_PAIRS, ONE_RATER) and no_pairs is not None:
        reason = no_pairs
    if reason is not None:
        return MetricResult(None, reason, cat.n_units, n_pairable, n_values)
    agreeing = float((counts * (counts - 1)).sum())
    total = float((r * (r - 1)).sum())
    return MetricResult(agreeing / total, None, cat.n_units, n_pairable, n_values)


def percent_agreement_result(ratings: Sequence[Sequence[Any]]) -> MetricResult:
    """Share of agreeing pairs of ratings within units (units × raters, ``None`` missing).

    Pairs are pooled over units: sum_i sum_k r_ik (r_ik - 1) / sum_i r_i (r_i - 1), so a unit
    with more ratings weighs more. With the same number of ratings on every unit this equals
    the p_a of Fleiss' kappa and AC1. ``None`` if no unit has two ratings.
    """
    return _pooled_pairs(_categorical(ratings))


def percent_agreement(ratings: Sequence[Sequence[Any]]) -> float | None:
    """Pooled pairwise percent agreement (units × raters); ``None`` if undefined."""
    return percent_agreement_result(ratings).value


# ---------------------------------------------------------------------------
# Pairwise preferences (MT-Bench convention)
# ---------------------------------------------------------------------------

_VOTE_CLASSES = ("A", "B", "tie")


def pairwise_agreement_result(
    item_votes: Sequence[Sequence[Any]], ties: Literal["with", "without"] = "with"
) -> MetricResult:
    """Agreement between pairwise-preference judgments, as in MT-Bench (Zheng et al., 2023).

    ``item_votes`` holds, per item, the votes cast on it: "A", "B" or "tie" (anything else,
    including ``None``, is ignored). The value is the share of pairs of votes on the same item
    that agree, pooled over items. ``ties="with"`` treats a tie as its own class;
    ``ties="without"`` drops every pair that contains a tie. ``None`` if no item has two
    usable votes.
    """
    if ties not in ("with", "without"):
        raise ValueError(f"ties must be 'with' or 'without', not {ties!r}")
    kept = _VOTE_CLASSES if ties == "with" else _VOTE_CLASSES[:2]
    rows: list[list[str]] = []
    for votes in item_votes:
        if votes is None:
            rows.append([])
            continue
        if isinstance(votes, str):
            raise TypeError("every item must be a list of votes, not a string")
        rows.append([v for v in votes if isinstance(v, str) and v in kept])
    # Votes are listed per item, not per rater, so the reason speaks of items and votes.
    return _pooled_pairs(_categorical(rows, kept), no_pairs="no item has two or more usable votes")


def pairwise_agreement(
    item_votes: Sequence[Sequence[Any]], ties: Literal["with", "without"] = "with"
) -> float | None:
    """MT-Bench style agreement of pairwise votes; ``None`` if no item has two votes."""
    return pairwise_agreement_result(item_votes, ties).value


# ---------------------------------------------------------------------------
# Cohen's kappa (two raters)
# ---------------------------------------------------------------------------

_WEIGHTS = (None, "linear", "quadratic")


_is_missing = is_missing


def cohen_kappa_result(
    a: Sequence[Any],
    b: Sequence[Any],
    weights: Literal["linear", "quadratic"] | None = None,
    labels: Sequence[Hashable] | None = None,
) -> MetricResult:
    """Cohen's kappa between two raters, optionally weighted (Cohen 1968).

    ``a`` and ``b`` are parallel label lists; a position missing (``None``/NaN) in either is
    dropped from both. ``weights`` None gives the unweighted kappa; "linear" / "quadratic"
    weigh a disagreement by |i - j| or (i - j)^2 where i, j are positions in the ordered label
    set: ``labels`` if given (it may include unused categories; other labels raise
    ``ValueError``), else the sorted union of the observed labels. Raises ``ValueError`` for
    unequal lengths or unknown weights. ``None`` if no position is rated by both or only one
    category is used by both raters together.
    """
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same length ({len(a)} != {len(b)})")
    if weights not in _WEIGHTS:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not _is_missing(x) and not _is_missing(y)]
    n_pairs = len(pairs)
    if not a:
        return MetricResult(None, EMPTY, 0, 0, 0)
    if not pairs:
        return MetricResult(None, "no position is rated by both raters", len(a), 0, 0)
    if labels is None:
        observed = {x for pair in pairs for x in pair}
        try:
            labels = sorted(observed)
        except TypeError:
            if weights is not None:
                raise ValueError(
                    "weighted kappa needs orderable labels; pass labels= in scale order"
                ) from None
            labels = sorted(observed, key=repr)
    enc = encode([[x for x, _ in pairs], [y for _, y in pairs]], numeric=False, value_order=labels)
    k = enc.n_categories
    codes = enc.codes.reshape(2, n_pairs)
    if np.unique(codes).shape[0] < 2:
        return MetricResult(None, ONE_CATEGORY, len(a), n_pairs, 2 * n_pairs)
    confusion = np.bincount(codes[0] * k + codes[1], minlength=k * k).reshape(k, k).astype(float)
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / n_pairs
    distance = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]).astype(float)
    if weights is None:
        weight = (distance > 0).astype(float)
    elif weights == "linear":
        weight = distance
    else:
        weight = distance**2
    value = 1.0 - float((weight * confusion).sum()) / float((weight * expected).sum())
    return MetricResult(finite_or_none(value), None, len(a), n_pairs, 2 * n_pairs)


def cohen_kappa(
    a: Sequence[Any],
    b: Sequence[Any],
    weights: Literal["linear", "quadratic"] | None = None,
    labels: Sequence[Hashable] | None = None,
) -> float | None:
    """Cohen's kappa (unweighted, linear or quadratic); ``None`` if undefined."""
    return cohen_kappa_result(a, b, weights, labels).value
