"""The five detectors: each compares a rater's recent windows with their own baseline."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from scipy import stats

from ratings.drift.measures import _js_rows
from ratings.drift.streams import _Rater, _Windows, _windows
from ratings.drift.types import DriftConfig


@dataclass
class _Result:
    rater: _Rater
    detector: str
    positions: np.ndarray  # positions of usable observations in the rater's sorted stream
    windows: _Windows
    p: np.ndarray
    statistic: np.ndarray
    baseline_value: np.ndarray
    window_value: np.ndarray
    test: str
    detail: Callable[[int], dict[str, Any]]

    @property
    def bonferroni(self) -> float:
        return float(min(1.0, self.p.min() * len(self.windows)))


#: Cuts the windows of one detector from the times of its usable observations, instead of
#: the configured count and date windows (used to re-check a flag on the latest data).
_MakeWindows = Callable[[np.ndarray, int, int, bool], _Windows]


def _cut(
    make: _MakeWindows | None,
    t_usable: np.ndarray,
    size: int,
    min_n: int,
    min_base: int,
    c: DriftConfig,
    origin: float,
    gold: bool = False,
) -> _Windows:
    """The windows of one detector: ``make(t_usable, size, min_base, gold)`` when given."""
    if make is not None:
        return make(t_usable, size, min_base, gold)
    return _windows(t_usable, size, min_n, min_base, c, origin)


def _cumsum0(x: np.ndarray) -> np.ndarray:
    out = np.empty(x.size + 1, dtype=float)
    out[0] = 0.0
    np.cumsum(x, out=out[1:])
    return out


def _agreement(
    r: _Rater, c: DriftConfig, origin: float, make: _MakeWindows | None = None
) -> _Result | None:
    usable = ~np.isnan(r.agreement)
    pos = np.flatnonzero(usable)
    w = _cut(make, r.t[pos], c.window_size, c.min_window, c.min_baseline, c, origin)
    if not len(w):
        return None
    x = r.agreement[pos]
    cs, cs2 = _cumsum0(x), _cumsum0(x * x)
    nb = w.base.astype(float)
    nw = (w.hi - w.lo).astype(float)
    sb, sw = cs[w.base], cs[w.hi] - cs[w.lo]
    mb, mw = sb / nb, sw / nw
    binary = bool(np.all((x == 0.0) | (x == 1.0)))
    if binary:
        # Fisher, one-sided mid-p: P(X < kw) + P(X = kw) / 2, X ~ Hypergeom(nb + nw, kb + kw, nw).
        kb = np.rint(sb).astype(np.int64)
        kw = np.rint(sw).astype(np.int64)
        big, succ, draws = w.base + w.hi - w.lo, kb + kw, w.hi - w.lo
        p = stats.hypergeom.cdf(kw, big, succ, draws) - 0.5 * stats.hypergeom.pmf(
            kw, big, succ, draws
        )
        p = np.clip(p, 0.0, 1.0)
        stat = sw
        test = "fisher_mid_p"
    else:
        s2b, s2w = cs2[w.base], cs2[w.hi] - cs2[w.lo]
        vb = np.maximum(s2b - nb * mb * mb, 0.0) / np.maximum(nb - 1.0, 1.0)
        vw = np.maximum(s2w - nw * mw * mw, 0.0) / np.maximum(nw - 1.0, 1.0)
        ab, aw = vb / nb, vw / nw
        se = np.sqrt(ab + aw)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = (mb - mw) / se
            df = (ab + aw) ** 2 / (ab**2 / np.maximum(nb - 1.0, 1.0) + aw**2 / (nw - 1.0))
            p = stats.t.sf(stat, np.where(np.isfinite(df), df, np.inf))
        degenerate = se <= 0
        stat = np.where(degenerate, np.where(mb > mw, np.inf, 0.0), stat)
        p = np.where(degenerate, np.where(mb > mw, 0.0, 1.0), p)
        test = "welch_t"
    p = np.where(mb - mw >= c.min_agreement_drop, p, 1.0)

    def detail(i: int) -> dict[str, Any]:
        return {"binary_scores": binary, "mean_drop": float(mb[i] - mw[i])}

    return _Result(r, "agreement", pos, w, p, stat, mb, mw, test, detail)


def _welch(
    nb: np.ndarray, mb: np.ndarray, vb: np.ndarray, nw: np.ndarray, mw: np.ndarray, vw: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch's t of ``mw - mb``, its degrees of freedom and standard error."""
    ab, aw = vb / nb, vw / nw
    se = np.sqrt(ab + aw)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = (mw - mb) / se
        df = (ab + aw) ** 2 / (
            ab**2 / np.maximum(nb - 1.0, 1.0) + aw**2 / np.maximum(nw - 1.0, 1.0)
        )
    return stat, np.where(np.isfinite(df), df, np.inf), se


def _leniency(
    r: _Rater, c: DriftConfig, origin: float, make: _MakeWindows | None = None
) -> _Result | None:
    """The mean residual (score minus the others' mean) moves away from the baseline's, either
    way: two-sided Welch t."""
    pos = np.flatnonzero(~np.isnan(r.residual))
    w = _cut(make, r.t[pos], c.window_size, c.min_window, c.min_baseline, c, origin)
    if not len(w):
        return None
    x = r.residual[pos]
    cs, cs2 = _cumsum0(x), _cumsum0(x * x)
    nb = w.base.astype(float)
    nw = (w.hi - w.lo).astype(float)
    sb, sw = cs[w.base], cs[w.hi] - cs[w.lo]
    mb, mw = sb / nb, sw / nw
    vb = np.maximum(cs2[w.base] - nb * mb * mb, 0.0) / np.maximum(nb - 1.0, 1.0)
    vw = np.maximum(cs2[w.hi] - cs2[w.lo] - nw * mw * mw, 0.0) / np.maximum(nw - 1.0, 1.0)
    stat, df, se = _welch(nb, mb, vb, nw, mw, vw)
    p = np.minimum(1.0, 2.0 * stats.t.sf(np.abs(stat), df))
    degenerate = se <= 0
    stat = np.where(degenerate, np.where(mw > mb, np.inf, np.where(mw < mb, -np.inf, 0.0)), stat)
    p = np.where(degenerate, np.where(mw != mb, 0.0, 1.0), p)
    p = np.where(np.abs(mw - mb) >= c.min_residual_shift, p, 1.0)

    def detail(i: int) -> dict[str, Any]:
        shift = float(mw[i] - mb[i])
        return {"shift": shift, "direction": "more lenient" if shift > 0 else "harsher"}

    return _Result(r, "leniency", pos, w, p, stat, mb, mw, "welch_t_two_sided", detail)


def _gold(
    r: _Rater, c: DriftConfig, origin: float, make: _MakeWindows | None = None
) -> _Result | None:
    usable = ~np.isnan(r.gold)
    pos = np.flatnonzero(usable)
    w = _cut(
        make,
        r.t[pos],
        c.gold_window_size,
        c.min_gold_window,
        c.min_gold_baseline,
        c,
        origin,
        gold=True,
    )
    if not len(w):
        return None
    cs = _cumsum0(r.gold[pos])
    nb = w.base
    nw = w.hi - w.lo
    kb = np.rint(cs[w.base]).astype(np.int64)
    kw = np.rint(cs[w.hi] - cs[w.lo]).astype(np.int64)
    # Fisher exact, one-sided: P(X <= kw) for X ~ Hypergeom(total nb + nw, successes kb + kw,
    # draws nw).
    p = stats.hypergeom.cdf(kw, nb + nw, kb + kw, nw)
    mb, mw = kb / nb, kw / nw
    p = np.where(mb - mw >= c.min_gold_drop, np.minimum(p, 1.0), 1.0)

    def detail(i: int) -> dict[str, Any]:
        return {
            "baseline_correct": int(kb[i]),
            "window_correct": int(kw[i]),
            "accuracy_drop": float(mb[i] - mw[i]),
        }

    return _Result(r, "gold_accuracy", pos, w, p, kw.astype(float), mb, mw, "fisher_exact", detail)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so that ``detail`` stays JSON-serialisable."""
    return value.item() if isinstance(value, np.generic) else value


def _labels(
    r: _Rater,
    c: DriftConfig,
    origin: float,
    vocab_values: list[Any],
    pool: np.ndarray | None,
    make: _MakeWindows | None = None,
) -> _Result | None:
    pos = np.flatnonzero(r.label >= 0)
    w = _cut(make, r.t[pos], c.window_size, c.min_window, c.min_baseline, c, origin)
    if not len(w):
        return None
    present, codes = np.unique(r.label[pos], return_inverse=True)
    k = present.size
    onehot_cum = np.zeros((pos.size + 1, k), dtype=np.int64)
    onehot_cum[np.arange(1, pos.size + 1), codes] = 1
    np.cumsum(onehot_cum, axis=0, out=onehot_cum)
    base = onehot_cum[w.base].astype(float)  # (W, k)
    win = (onehot_cum[w.hi] - onehot_cum[w.lo]).astype(float)
    nb = w.base.astype(float)[:, None]
    nw = (w.hi - w.lo).astype(float)[:, None]
    tot = base + win
    share_tot = tot / (nb + nw)
    exp_w, exp_b = nw * share_tot, nb * share_tot
    # Sparse labels (expected window count < min_expected_count) go to one "other" cell.
    rare = exp_w < c.min_expected_count
    common = ~rare & (tot > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cell = np.where(common, (win - exp_w) ** 2 / exp_w + (base - exp_b) ** 2 / exp_b, 0.0).sum(
            axis=1
        )
        o_w, o_b = (win * rare).sum(axis=1), (base * rare).sum(axis=1)
        e_w, e_b = (exp_w * rare).sum(axis=1), (exp_b * rare).sum(axis=1)
        use_other = e_w >= 1.0
        other = np.where(use_other, (o_w - e_w) ** 2 / e_w + (o_b - e_b) ** 2 / e_b, 0.0)
    chi2 = cell + other
    dof = common.sum(axis=1) + use_other.astype(np.int64) - 1
    p = np.where(dof >= 1, stats.chi2.sf(chi2, np.maximum(dof, 1)), 1.0)
    pb, pw = base / nb, win / nw
    js = _js_rows(pb, pw)
    p = np.where(js >= c.min_js_distance, p, 1.0)
    rise = pw - pb
    top = np.argmax(rise, axis=1)
    rows = np.arange(len(w))
    labels = [_plain(vocab_values[i]) for i in present.tolist()]
    pool_local = None
    if pool is not None:
        pool_local = np.zeros(len(vocab_values))
        pool_local[: pool.size] = pool

    def detail(i: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": labels[int(top[i])],
            "labels": labels,
            "baseline_counts": base[i].astype(int).tolist(),
            "window_counts": win[i].astype(int).tolist(),
            "js_distance": float(js[i]),
            "dof": int(dof[i]),
        }
        if pool_local is not None and pool_local.sum() > 0:
            # Distances to the pool over the whole vocabulary (labels unseen by the rater = 0).
            full_b = np.zeros(len(vocab_values))
            full_w = np.zeros(len(vocab_values))
            full_b[present] = pb[i]
            full_w[present] = pw[i]
            ref = pool_local / pool_local.sum()
            out["js_baseline_vs_pool"] = float(_js_rows(full_b[None], ref[None])[0])
            out["js_window_vs_pool"] = float(_js_rows(full_w[None], ref[None])[0])
        return out

    return _Result(
        r, "label_distribution", pos, w, p, chi2, pb[rows, top], pw[rows, top], "chi_square", detail
    )


_CHUNK_CELLS: Final = 4_000_000  # bound on the (windows x observations) work arrays


def _prefix_medians(x: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Median of ``x[:e]`` for every ``e`` in ``ends`` (each >= 1), without a Python loop."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    out = np.empty(ends.size)
    step = max(1, _CHUNK_CELLS // max(x.size, 1))
    for a in range(0, ends.size, step):
        e = ends[a : a + step]
        cum = np.cumsum(order[None, :] < e[:, None], axis=1)
        lower = np.argmax(cum > ((e - 1) // 2)[:, None], axis=1)
        upper = np.argmax(cum > (e // 2)[:, None], axis=1)
        out[a : a + step] = 0.5 * (sorted_x[lower] + sorted_x[upper])
    return out


def _speed(
    r: _Rater, c: DriftConfig, origin: float, make: _MakeWindows | None = None
) -> _Result | None:
    pos = np.flatnonzero(~np.isnan(r.seconds))
    w = _cut(make, r.t[pos], c.window_size, c.min_window, c.min_baseline, c, origin)
    if not len(w):
        return None
    sec = r.seconds[pos]
    mins = r.min_seconds[pos]
    fixed_fast = ~np.isnan(mins) & (sec < mins)
    # The cut-off is a symmetric function of baseline + window, which keeps Fisher exact.
    cut = c.fast_fraction * _prefix_medians(sec, w.hi)
    kb = np.empty(len(w), dtype=np.int64)
    kw = np.empty(len(w), dtype=np.int64)
    step = max(1, _CHUNK_CELLS // max(sec.size, 1))
    for a in range(0, len(w), step):
        sl = slice(a, a + step)
        fast = fixed_fast[None, :] | (sec[None, :] < cut[sl, None])
        cum = np.zeros((fast.shape[0], sec.size + 1), dtype=np.int64)
        np.cumsum(fast, axis=1, out=cum[:, 1:])
        rows = np.arange(fast.shape[0])
        kb[sl] = cum[rows, w.base[sl]]
        kw[sl] = cum[rows, w.hi[sl]] - cum[rows, w.lo[sl]]
    nb = w.base
    nw = w.hi - w.lo
    # Fisher exact, one-sided: P(X >= kw).
    p = stats.hypergeom.sf(kw - 1, nb + nw, kb + kw, nw)
    sb, sw = kb / nb, kw / nw
    p = np.where(sw - sb >= c.min_fast_share_increase, np.clip(p, 0.0, 1.0), 1.0)

    def detail(i: int) -> dict[str, Any]:
        lo, hi, base = int(w.lo[i]), int(w.hi[i]), int(w.base[i])
        med_b, med_w = float(np.median(sec[:base])), float(np.median(sec[lo:hi]))
        return {
            "baseline_too_fast": int(kb[i]),
            "window_too_fast": int(kw[i]),
            "relative_cutoff_seconds": float(cut[i]),
            "baseline_median_seconds": med_b,
            "window_median_seconds": med_w,
            "median_ratio": med_w / med_b if med_b > 0 else None,
        }

    return _Result(r, "speed", pos, w, p, kw.astype(float), sb, sw, "fisher_exact", detail)


def _position(
    r: _Rater, c: DriftConfig, origin: float, make: _MakeWindows | None = None
) -> _Result | None:
    pos = np.flatnonzero(~np.isnan(r.left))
    w = _cut(make, r.t[pos], c.window_size, c.min_window, 0, c, origin)
    if not len(w):
        return None
    cs = _cumsum0(r.left[pos])
    nw = w.hi - w.lo
    k = np.rint(cs[w.hi] - cs[w.lo]).astype(np.int64)
    # Exact two-sided binomial test against 0.5 (symmetric null: double the smaller tail).
    p = np.minimum(
        1.0, 2.0 * np.minimum(stats.binom.cdf(k, nw, 0.5), stats.binom.sf(k - 1, nw, 0.5))
    )
    share = k / nw
    p = np.where(np.abs(share - 0.5) >= c.min_position_deviation, p, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        base_share = np.where(w.lo > 0, cs[w.lo] / w.lo, np.nan)

    def detail(i: int) -> dict[str, Any]:
        b = float(base_share[i])
        return {
            "left_picks": int(k[i]),
            "baseline_left_share": None if math.isnan(b) else b,
        }

    return _Result(
        r,
        "position_bias",
        pos,
        w,
        p,
        k.astype(float),
        np.full(len(w), 0.5),
        share,
        "exact_binomial",
        detail,
    )
