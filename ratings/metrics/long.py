"""Agreement building blocks on long-format data: one row per rating (unit, rater, value).

The database gives ratings in long format; these vectorised functions avoid a dense
units x raters matrix (500 raters x 200,000 items would be 100 million cells).
"""

from __future__ import annotations

import numpy as np


def _dense_index(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and the index of each key among them (``np.unique``).

    Integer keys in a range not much wider than their number (database ids) are ranked with
    a lookup table instead of a sort: same result, several times faster on large inputs.
    """
    keys = np.asarray(keys)
    if keys.size and keys.dtype.kind in "iu":
        low, high = int(keys.min()), int(keys.max())
        if high - low <= 4 * keys.size + 1_000_000:
            offsets = (keys - low).astype(np.int64).reshape(-1)
            present = np.zeros(high - low + 1, dtype=bool)
            present[offsets] = True
            rank = np.cumsum(present) - 1
            return np.flatnonzero(present).astype(keys.dtype) + low, rank[offsets]
    uniques, index = np.unique(keys, return_inverse=True)
    return uniques, index.reshape(-1)


# Above this many possible (rater, rater) keys, pairs are found by sorting instead of counting.
_MAX_PAIR_KEYS = 1 << 24


def _pair_index(a: np.ndarray, b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs of dense indices < n, sorted, and the pair index of each input.

    Same result as ``np.unique(np.stack([a, b], 1), axis=0, return_inverse=True)``, on one
    int64 key per pair: counted with ``np.bincount`` when n * n is small, else sorted.
    """
    key = a.astype(np.int64) * n + b
    if n * n <= max(_MAX_PAIR_KEYS, 4 * key.size):
        present = np.bincount(key, minlength=n * n) > 0
        keys = np.flatnonzero(present)
        lookup = np.cumsum(present) - 1
        inverse = lookup[key]
    else:
        keys, inverse = np.unique(key, return_inverse=True)
    return np.stack([keys // n, keys % n], axis=1), inverse.reshape(-1)


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


def loo_interval_residual(units: np.ndarray, values: np.ndarray, scale_range: float) -> np.ndarray:
    """Per rating: (value - mean of the other ratings of its unit) / scale_range, in [-1, 1]
    when the values lie on the scale; positive when the rater scores higher than the others.

    NaN where the unit has no other rating (not pairable).
    """
    values = np.asarray(values, dtype=float)
    _, u = _dense_index(np.asarray(units))
    n = np.bincount(u).astype(float)
    total = np.bincount(u, weights=values)
    others = n[u] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        residual = (values - (total[u] - values) / others) / max(scale_range, 1e-12)
    residual[others < 1] = np.nan
    return residual


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
    la, lb = labels[li], labels[ri]
    rater_values, r = _dense_index(raters)
    pairs, p = _pair_index(r[li], r[ri], rater_values.size)
    pairs = rater_values[pairs]
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
