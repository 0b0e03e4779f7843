"""Agreement building blocks on long-format data: one row per rating (unit, rater, value).

The database gives ratings in long format; these vectorised functions avoid a dense
units x raters matrix (500 raters x 200,000 items would be 100 million cells).
"""

from __future__ import annotations

import numpy as np


def _dense_index(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, index = np.unique(keys, return_inverse=True)
    return uniques, index.reshape(-1)


def units_by_slot(units: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Units x k float matrix (k = most ratings on one unit), NaN where missing.

    The column a rating lands in carries no meaning: the statistics that take this shape
    (alpha, Fleiss, AC1, percent agreement) only look at the values within a unit.
    """
    units = np.asarray(units)
    values = np.asarray(values, dtype=float)
    if units.size == 0:
        return np.empty((0, 0))
    _, u = _dense_index(units)
    order = np.argsort(u, kind="stable")
    u_sorted = u[order]
    counts = np.bincount(u_sorted)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    slot = np.arange(u_sorted.size) - starts[u_sorted]
    out = np.full((counts.size, int(counts.max())), np.nan)
    out[u_sorted, slot] = values[order]
    return out


def loo_interval_agreement(units: np.ndarray, values: np.ndarray, scale_range: float) -> np.ndarray:
    """Per rating: 1 - |value - mean of the other ratings of its unit| / scale_range.

    NaN where the unit has no other rating (not pairable).
    """
    values = np.asarray(values, dtype=float)
    _, u = _dense_index(np.asarray(units))
    n = np.bincount(u).astype(float)
    total = np.bincount(u, weights=values)
    others = n[u] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_others = (total[u] - values) / others
        agreement = 1.0 - np.abs(values - mean_others) / max(scale_range, 1e-12)
    agreement[others < 1] = np.nan
    return agreement


def loo_nominal_agreement(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per rating: 1 if its label is a mode of the other ratings of its unit, else 0.

    Ties among the others' modes count as agreement when the label is one of them. NaN where
    the unit has no other rating.
    """
    labels = np.asarray(labels)
    _, u = _dense_index(np.asarray(units))
    _, c = _dense_index(labels)
    n_units, n_cats = int(u.max()) + 1 if u.size else 0, int(c.max()) + 1 if c.size else 0
    counts = np.bincount(u * n_cats + c, minlength=n_units * n_cats).reshape(n_units, n_cats)
    own = counts[u, c] - 1  # the others' count of my label
    # the others' top count: the unit's top count, unless I am the only rating at the top
    top = counts.max(axis=1)
    n_top = (counts == top[:, None]).sum(axis=1)
    mine_is_top = counts[u, c] == top[u]
    second = np.sort(counts, axis=1)[:, -2] if n_cats > 1 else np.zeros(n_units, dtype=int)
    others_top = np.where(mine_is_top & (n_top[u] == 1), np.maximum(top[u] - 1, second[u]), top[u])
    agreement = (own >= others_top).astype(float)
    agreement[np.bincount(u)[u] < 2] = np.nan
    return agreement


def cohen_kappa_pairs(
    units: np.ndarray,
    raters: np.ndarray,
    labels: np.ndarray,
    *,
    n_categories: int,
    weights: str | None = None,
    min_shared: int = 20,
) -> list[tuple[int, int, int, float | None]]:
    """Cohen's kappa for every pair of raters sharing at least ``min_shared`` units.

    ``labels`` are category codes 0..n_categories-1 (ordered, for weighted kappa). Returns
    (rater_a, rater_b, shared, kappa) with rater_a < rater_b; kappa None where undefined.
    Vectorised over pairs: cost grows with the number of co-ratings, not pairs x categories
    loops in Python.
    """
    units, raters, labels = (np.asarray(a) for a in (units, raters, labels))
    if units.size == 0:
        return []
    order = np.lexsort((raters, units))
    units, raters, labels = units[order], raters[order], labels[order].astype(np.int64)
    _, u = _dense_index(units)
    counts = np.bincount(u)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # every within-unit pair (i < j) of ratings
    left, right = [], []
    for k in range(2, int(counts.max()) + 1):
        base = starts[counts == k]
        if base.size == 0:
            continue
        i, j = np.triu_indices(k, 1)
        left.append((base[:, None] + i[None, :]).ravel())
        right.append((base[:, None] + j[None, :]).ravel())
    if not left:
        return []
    li, ri = np.concatenate(left), np.concatenate(right)
    ra, rb, la, lb = raters[li], raters[ri], labels[li], labels[ri]
    pair_keys = np.stack([ra, rb], axis=1)
    pairs, p = np.unique(pair_keys, axis=0, return_inverse=True)
    p = p.reshape(-1)
    shared = np.bincount(p)
    keep = shared >= min_shared
    K = n_categories
    idx = np.arange(K, dtype=float)
    if weights is None:
        w = 1.0 - np.eye(K)
    elif weights == "linear":
        w = np.abs(idx[:, None] - idx[None, :]) / max(K - 1, 1)
    elif weights == "quadratic":
        w = (idx[:, None] - idx[None, :]) ** 2 / max(K - 1, 1) ** 2
    else:
        raise ValueError(f"unknown weights {weights!r}")
    n_pairs = pairs.shape[0]
    observed = np.bincount(p, weights=w[la, lb], minlength=n_pairs) / shared
    pa = np.bincount(p * K + la, minlength=n_pairs * K).reshape(n_pairs, K) / shared[:, None]
    pb = np.bincount(p * K + lb, minlength=n_pairs * K).reshape(n_pairs, K) / shared[:, None]
    expected = np.einsum("pk,kl,pl->p", pa, w, pb)
    out = []
    for i in np.flatnonzero(keep):
        kappa = None if expected[i] <= 1e-12 else float(1.0 - observed[i] / expected[i])
        out.append((int(pairs[i, 0]), int(pairs[i, 1]), int(shared[i]), kappa))
    return out
