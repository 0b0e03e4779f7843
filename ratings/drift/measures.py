"""Statistical helpers of the detectors: Benjamini-Hochberg, Jensen-Shannon distance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> list[float]:
    """Benjamini-Hochberg adjusted p-values, in the input order.

    Rejecting every hypothesis whose adjusted p-value is <= q controls the false discovery rate
    at level q under independence or positive regression dependence. Each adjusted value is in
    [0, 1], is >= the raw p-value, and the adjustment is monotone in the raw p-values. Matches
    ``scipy.stats.false_discovery_control(p, method="bh")``.

    Raises:
        ValueError: if a p-value is NaN or outside [0, 1].
    """
    p = np.asarray(p_values, dtype=float).ravel()
    if p.size == 0:
        return []
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must be in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()


def jensen_shannon_distance(
    p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray
) -> float:
    """Jensen-Shannon distance (base 2) between two count or probability vectors.

    Both vectors are normalised to sum to 1 first. The result is in [0, 1], symmetric, 0 iff the
    distributions are equal, and satisfies the triangle inequality. Matches
    ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

    Raises:
        ValueError: on shape mismatch, negative entries or an all-zero vector.
    """
    a = np.asarray(p, dtype=float)
    b = np.asarray(q, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("p and q must be 1-d vectors of the same length")
    if (a < 0).any() or (b < 0).any() or a.sum() <= 0 or b.sum() <= 0:
        raise ValueError("p and q must be non-negative with a positive sum")
    return float(_js_rows(a[None, :] / a.sum(), b[None, :] / b.sum())[0])


def _js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=-1)
        kq = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=-1)
    return np.sqrt(np.clip(0.5 * (kp + kq), 0.0, 1.0))
