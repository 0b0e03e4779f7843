"""Per-rater drift detection: flag raters whose recent work got worse than their own history.

Each rater contributes a chronological stream of :class:`Observation` objects (one per
judgment). Five detectors compare recent windows of that stream with the rater's own earlier
history (the *baseline*):

``agreement``
    Mean agreement with the leave-one-out consensus falls. When every agreement score of the
    rater is 0 or 1: one-sided Fisher test (window vs baseline counts) with mid-p; otherwise a
    one-sided Welch t-test of the window mean against the baseline mean.
``gold_accuracy``
    Accuracy on gold items falls. One-sided Fisher exact test (window vs baseline counts).
``label_distribution``
    The distribution of categorical labels shifts. Chi-square test of homogeneity (window vs
    baseline counts, sparse labels merged); the Jensen-Shannon distance is the effect size.
``speed``
    The share of too-fast judgments rises. A judgment is too fast when it took less than its
    plausible minimum reading time (``min_seconds``, when known) or less than
    ``fast_fraction`` x the median time of the baseline and window pooled. One-sided Fisher
    exact test (window vs baseline counts).
``position_bias``
    Position bias appears in decisive pairwise judgments. Two-sided exact binomial test of the
    window's share of left picks against 0.5 (sides are assumed randomised, so any departure
    from 0.5 is bias, whether or not the rater had it before).

Windows
    *Count windows* are consecutive, non-overlapping blocks of ``window_size`` observations that
    carry the detector's signal (``gold_window_size`` for gold), starting right after the first
    ``min_baseline`` such observations (``min_gold_baseline`` for gold; position bias needs no
    baseline and starts at the first decisive pick). A trailing partial block is tested when it
    holds at least ``min_window`` observations (``min_gold_window`` for gold).
    *Date windows* are calendar blocks of ``window_days`` days counted from
    ``DriftConfig.date_origin`` (default: UTC midnight of the earliest observation in the run),
    tested when they hold at least ``min_window`` (``min_gold_window``) observations with the
    signal and the baseline before them holds at least ``min_baseline`` (``min_gold_baseline``).
    The baseline of every window is *expanding*: all of the rater's observations with the signal
    that precede the window.

Multiple testing
    For every (rater, detector) pair with at least one window, the most significant window's
    p-value is multiplied by the number of windows tested for that pair, count and date windows
    together (Bonferroni, capped at 1). These per-pair p-values, one per rater x detector tested
    in the same :func:`detect_drift` call, form a single Benjamini-Hochberg family of size N at
    level ``DriftConfig.fdr``; with R rejections, a pair is flagged iff its Bonferroni p-value
    is <= ``fdr * R / N``. Guarantees, given valid per-window p-values: under independence or
    positive dependence between pairs, the expected share of false flags among the flags of one
    call is at most ``fdr``; a pair with no drift is flagged with probability at most ``fdr``
    whatever the other pairs do. The flag reports the earliest window whose own Bonferroni
    p-value is below ``fdr * R / N`` (such a window alone would produce the same set of flags),
    so the reported window is the detection time, not necessarily the most extreme window.
    The p-values of ``gold_accuracy``, ``speed`` and ``position_bias`` are exact (conservative);
    the Fisher mid-p, the Welch t and the chi-square p-values are approximations, checked by
    simulation to be at or below nominal in the tail.

Effect-size gates
    A window whose effect is smaller than the configured practical minimum (for example an
    agreement drop below ``min_agreement_drop``) gets p-value 1. This only makes the procedure
    more conservative; the window still counts in the Bonferroni factor.

Assumptions
    Under "no drift", a rater's observations with the signal are exchangeable over time (for
    ``position_bias``: independent with left-pick probability 0.5). Strong autocorrelation
    (for example day-to-day swings in a rater's speed) makes the tests anti-conservative; the
    Bonferroni factor and the effect-size gates leave some margin for it.

This module is pure Python + numpy + scipy and does not import Django.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
from scipy import stats

__all__ = [
    "DEFAULT_CONFIG",
    "DETECTORS",
    "DriftConfig",
    "DriftFlag",
    "Observation",
    "benjamini_hochberg",
    "detect_drift",
    "detect_drift_columns",
    "jensen_shannon_distance",
]

DetectorName = Literal["agreement", "gold_accuracy", "label_distribution", "speed", "position_bias"]
WindowKind = Literal["count", "date"]

#: Detector names, in the order flags for one rater are reported when p-values tie.
DETECTORS: Final[tuple[str, ...]] = (
    "agreement",
    "gold_accuracy",
    "label_distribution",
    "speed",
    "position_bias",
)
_WINDOW_KINDS: Final[tuple[str, ...]] = ("count", "date")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND: Final = timedelta(seconds=1)
_DAY_SECONDS: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class Observation:
    """One judgment by one rater.

    Every signal is optional; a detector only uses the observations that carry its signal.

    Attributes:
        at: when the judgment was submitted; must be timezone-aware.
        agreement: agreement with the leave-one-out consensus, in [0, 1] (0/1 or a score).
        gold_correct: for gold items, whether the answer was correct.
        label: the categorical label given (a Likert score, a preference...). Labels are
            compared with ``==``/hash, so ``1`` and ``"1"`` are different labels.
        seconds: time spent on the judgment, >= 0.
        min_seconds: plausible minimum reading time for the item, >= 0.
        left_pick: for decisive pairwise judgments only, True if the left side was picked.
    """

    at: datetime
    agreement: float | None = None
    gold_correct: bool | None = None
    label: str | int | None = None
    seconds: float | None = None
    min_seconds: float | None = None
    left_pick: bool | None = None


@dataclass(frozen=True)
class DriftConfig:
    """Knobs of :func:`detect_drift`. Every field is validated on construction.

    Attributes:
        window_size: observations per count window (agreement, labels, speed, position bias).
        gold_window_size: gold answers per count window for ``gold_accuracy``.
        window_days: length of a date window in days.
        min_window: minimum observations with the signal for a window to be tested
            (trailing count block or date window).
        min_gold_window: same for gold answers.
        min_baseline: minimum observations with the signal before a window for it to be
            tested (not used by ``position_bias``, which tests against 0.5).
        min_gold_baseline: same for gold answers.
        fdr: Benjamini-Hochberg level over all (rater, detector) pairs of one call.
        min_agreement_drop: smallest drop of mean agreement (baseline - window) worth flagging.
        min_gold_drop: smallest drop of gold accuracy worth flagging.
        min_js_distance: smallest Jensen-Shannon distance (base 2, in [0, 1]) between window and
            baseline label distributions worth flagging.
        min_expected_count: labels whose expected count in the window is below this are merged
            into one "other" cell for the chi-square test; the merged cell is dropped if its
            own expected count is below 1.
        fast_fraction: a judgment is too fast when it took less than this fraction of the
            median time (baseline and window pooled), or less than its ``min_seconds``.
        min_fast_share_increase: smallest rise of the too-fast share worth flagging.
        min_position_deviation: smallest ``|left share - 0.5|`` worth flagging.
        date_origin: aware datetime where date windows are anchored; ``None`` = UTC midnight
            of the earliest observation of the call.
        detectors: which detectors to run (subset of :data:`DETECTORS`).
        window_kinds: which window kinds to scan (subset of ``("count", "date")``).
    """

    window_size: int = 100
    gold_window_size: int = 40
    window_days: int = 7
    min_window: int = 30
    min_gold_window: int = 10
    min_baseline: int = 100
    min_gold_baseline: int = 20
    fdr: float = 0.05
    min_agreement_drop: float = 0.05
    min_gold_drop: float = 0.10
    min_js_distance: float = 0.10
    min_expected_count: float = 10.0
    fast_fraction: float = 0.30
    min_fast_share_increase: float = 0.10
    min_position_deviation: float = 0.10
    date_origin: datetime | None = None
    detectors: tuple[str, ...] = DETECTORS
    window_kinds: tuple[str, ...] = _WINDOW_KINDS

    def __post_init__(self) -> None:
        for name in ("window_size", "gold_window_size", "window_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("min_window", "min_gold_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.min_window > self.window_size:
            raise ValueError("min_window must be <= window_size")
        if self.min_gold_window > self.gold_window_size:
            raise ValueError("min_gold_window must be <= gold_window_size")
        for name in ("min_baseline", "min_gold_baseline"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0.0 < self.fdr < 1.0:
            raise ValueError("fdr must be in (0, 1)")
        for name in (
            "min_agreement_drop",
            "min_gold_drop",
            "min_js_distance",
            "min_fast_share_increase",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if not 0.0 <= self.min_position_deviation <= 0.5:
            raise ValueError("min_position_deviation must be in [0, 0.5]")
        if not 0.0 < self.fast_fraction <= 1.0:
            raise ValueError("fast_fraction must be in (0, 1]")
        if self.min_expected_count < 1.0:
            raise ValueError("min_expected_count must be >= 1")
        if self.date_origin is not None and self.date_origin.utcoffset() is None:
            raise ValueError("date_origin must be timezone-aware")
        unknown = set(self.detectors) - set(DETECTORS)
        if unknown or not self.detectors:
            raise ValueError(f"detectors must be a non-empty subset of {DETECTORS}")
        if set(self.window_kinds) - set(_WINDOW_KINDS) or not self.window_kinds:
            raise ValueError(f"window_kinds must be a non-empty subset of {_WINDOW_KINDS}")


#: The configuration used when none is given.
DEFAULT_CONFIG: Final = DriftConfig()


@dataclass(frozen=True)
class DriftFlag:
    """One flagged (rater, detector) pair, reported at its earliest significant window.

    Attributes:
        rater: the key of the rater's stream.
        detector: one of :data:`DETECTORS`.
        window_kind: ``"count"`` or ``"date"``.
        window_start, window_end: for count windows, the times of the first and last
            observation in the window (both inclusive, as given); for date windows, the
            calendar block ``[start, end)`` in UTC.
        n_window: observations with the signal in the window.
        n_baseline: observations with the signal before the window.
        baseline_value, window_value: the compared quantities. agreement: mean agreement;
            gold_accuracy: share correct; label_distribution: share of the label whose share
            rose most (named in ``detail["label"]``); speed: share of too-fast judgments;
            position_bias: 0.5 (the reference) and the share of left picks.
        statistic: the test statistic. agreement: agreeing judgments in the window (0/1
            scores) or Welch t; gold_accuracy: correct gold answers in the window;
            label_distribution: chi-square; speed: too-fast judgments in the window;
            position_bias: left picks in the window.
        p_value: the one-window p-value of the reported window (after the effect-size gate).
        adjusted_p_value: Benjamini-Hochberg adjusted p-value of the (rater, detector) pair,
            computed from its Bonferroni-corrected most significant window. Always <= ``fdr``.
        threshold: the per-window p-value cut-off that the reported window met:
            ``fdr * R / N / windows_tested`` (R flags among N pairs tested in the call).
            ``p_value <= threshold`` always holds.
        detail: JSON-serialisable evidence. Always holds ``test``, ``windows_tested``,
            ``windows_significant``, ``bonferroni_p_value``, ``first_index`` and
            ``last_index`` (0-based positions of the window's first and last observation in the
            rater's chronologically sorted stream), ``most_significant_window`` and
            detector-specific counts.
    """

    rater: str | int
    detector: DetectorName
    window_kind: WindowKind
    window_start: datetime
    window_end: datetime
    n_window: int
    n_baseline: int
    baseline_value: float
    window_value: float
    statistic: float
    p_value: float
    adjusted_p_value: float
    threshold: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (datetimes as ISO 8601 strings)."""
        out = asdict(self)
        out["window_start"] = self.window_start.isoformat()
        out["window_end"] = self.window_end.isoformat()
        return out


# --------------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Internals: columnar view of one rater
# --------------------------------------------------------------------------------------------


@dataclass
class _Rater:
    key: str | int
    at: list[datetime] | None  # sorted, as given; None: UTC datetimes made from ``t`` on demand
    t: np.ndarray  # epoch seconds, sorted
    agreement: np.ndarray
    gold: np.ndarray
    label: np.ndarray  # int codes into the run's vocabulary, -1 = missing
    seconds: np.ndarray
    min_seconds: np.ndarray
    left: np.ndarray


def _float_column(values: list[Any], name: str, key: str | int) -> np.ndarray:
    try:
        return np.array(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"rater {key!r}: {name} must be numbers or None") from exc


def _prepare(key: str | int, obs: Sequence[Observation], vocab: dict[Any, int]) -> _Rater:
    try:
        t = np.array([(o.at - _EPOCH) / _SECOND for o in obs], dtype=float)
    except TypeError as exc:
        raise ValueError(f"rater {key!r}: every Observation.at must be timezone-aware") from exc
    order = np.argsort(t, kind="stable")
    t = t[order]
    at = [obs[i].at for i in order.tolist()]
    agreement = _float_column([o.agreement for o in obs], "agreement", key)[order]
    gold = _float_column([o.gold_correct for o in obs], "gold_correct", key)[order]
    seconds = _float_column([o.seconds for o in obs], "seconds", key)[order]
    min_seconds = _float_column([o.min_seconds for o in obs], "min_seconds", key)[order]
    left = _float_column([o.left_pick for o in obs], "left_pick", key)[order]
    raw_labels = [o.label for o in obs]
    for value in dict.fromkeys(raw_labels):
        if value is not None:
            vocab.setdefault(value, len(vocab))
    lookup = {**vocab, None: -1}
    label = np.fromiter(map(lookup.__getitem__, raw_labels), dtype=np.int64, count=len(obs))
    label = label[order]
    return _validated(_Rater(key, at, t, agreement, gold, label, seconds, min_seconds, left))


def _validated(r: _Rater) -> _Rater:
    """Check the value ranges of one rater's signals (NaN = missing); return the rater."""
    for name, col, lo, hi in (
        ("agreement", r.agreement, 0.0, 1.0),
        ("gold_correct", r.gold, 0.0, 1.0),
        ("left_pick", r.left, 0.0, 1.0),
        ("seconds", r.seconds, 0.0, math.inf),
        ("min_seconds", r.min_seconds, 0.0, math.inf),
    ):
        present = col[~np.isnan(col)]
        if present.size and ((present < lo).any() or (present > hi).any()):
            raise ValueError(f"rater {r.key!r}: {name} must be in [{lo}, {hi}]")
    if np.isin(r.gold, (0.0, 1.0), invert=True).sum() != np.isnan(r.gold).sum():
        raise ValueError(f"rater {r.key!r}: gold_correct must be a bool")
    return r


def _column(values: Any, name: str, n: int) -> np.ndarray:
    """One observation column as a float array of length ``n`` (all NaN when not given)."""
    if values is None:
        return np.full(n, math.nan)
    try:
        out = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers (NaN for none)") from exc
    if out.shape != (n,):
        raise ValueError(f"{name} must be a 1-d array of one value per observation")
    return out


def _raters_from_columns(
    rater: Any,
    at: Any,
    signals: dict[str, Any],
    label: Any,
    label_values: Sequence[Any] | None,
    vocab: dict[Any, int],
) -> list[_Rater]:
    """Split parallel observation columns into per-rater streams, exactly as :func:`_prepare`
    would build them from the equivalent :class:`Observation` streams (raters in order of
    first appearance, each rater's observations in input order before the stable time sort;
    labels enter ``vocab`` in that same order)."""
    keys = np.asarray(rater)
    if keys.ndim != 1:
        raise ValueError("rater must be a 1-d array of one key per observation")
    n = keys.size
    seconds = _column(at, "at", n)
    if not np.isfinite(seconds).all():
        raise ValueError("at must be finite epoch seconds")
    # Datetimes carry whole microseconds: round the fraction of a second exactly as
    # datetime.fromtimestamp does (half to even), so that both entry points see the same times.
    fraction, whole = np.modf(seconds)
    t = (whole * 1e6 + np.rint(fraction * 1e6)) / 1e6
    cols = {name: _column(values, name, n) for name, values in signals.items()}
    codes = np.full(n, -1, dtype=np.int64)
    if label is not None:
        if label_values is None:
            raise ValueError("label needs label_values (the label of each code)")
        given = np.asarray(label)
        if given.shape != (n,) or (given.size and given.dtype.kind not in "iu"):
            raise ValueError("label must be a 1-d integer array of one code per observation")
        if given.size and (given.min() < -1 or given.max() >= len(label_values)):
            raise ValueError("label codes must be -1 (none) or index label_values")
        codes = given.astype(np.int64)
    uniques, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    first = np.full(uniques.size, n, dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(n))
    by_appearance = np.argsort(first)  # first appearances are distinct
    rank = np.empty(uniques.size, dtype=np.int64)
    rank[by_appearance] = np.arange(uniques.size)
    # Small integer types make numpy's stable sorts radix sorts.
    group = rank[inverse].astype(np.uint16 if uniques.size <= 1 << 16 else np.int64)
    if label is not None:
        assert label_values is not None
        visited = codes[np.argsort(group, kind="stable")]
        seen = np.flatnonzero(visited >= 0)
        first_use = np.full(len(label_values), n, dtype=np.int64)
        np.minimum.at(first_use, visited[seen], seen)
        used = np.flatnonzero(first_use < n)
        for code in used[np.argsort(first_use[used])].tolist():
            if label_values[code] is not None:
                vocab.setdefault(label_values[code], len(vocab))
        table = np.array(
            [-1 if v is None else vocab.get(v, -1) for v in label_values] + [-1], dtype=np.int64
        )
        codes = table[codes]  # code -1 reads the trailing -1
    # By rater, then time, then input order (the stable time sort is fast on sorted input).
    by_time = np.argsort(t, kind="stable")
    order = by_time[np.argsort(group[by_time], kind="stable")]
    ends = np.cumsum(np.bincount(group, minlength=uniques.size))
    keys_in_order = uniques[by_appearance].tolist()
    raters = []
    for g, key in enumerate(keys_in_order):
        idx = order[(ends[g - 1] if g else 0) : ends[g]]
        raters.append(
            _validated(
                _Rater(
                    key,
                    None,
                    t[idx],
                    cols["agreement"][idx],
                    cols["gold_correct"][idx],
                    codes[idx],
                    cols["seconds"][idx],
                    cols["min_seconds"][idx],
                    cols["left_pick"][idx],
                )
            )
        )
    return raters


# --------------------------------------------------------------------------------------------
# Internals: windows
# --------------------------------------------------------------------------------------------


@dataclass
class _Windows:
    lo: np.ndarray  # first position (in the detector's usable-observation index)
    hi: np.ndarray  # one past the last position
    kind: np.ndarray  # 0 = count, 1 = date
    block_start: np.ndarray  # epoch seconds of the calendar block start (NaN for count)

    def __len__(self) -> int:
        return int(self.lo.size)


def _windows(
    t_usable: np.ndarray,
    size: int,
    min_n: int,
    min_base: int,
    config: DriftConfig,
    origin: float,
) -> _Windows:
    n = t_usable.size
    los, his, kinds, starts = [], [], [], []
    if "count" in config.window_kinds and n - min_base >= min_n:
        lo = np.arange(min_base, n, size, dtype=np.int64)
        hi = np.minimum(lo + size, n)
        keep = hi - lo >= min_n
        los.append(lo[keep])
        his.append(hi[keep])
        kinds.append(np.zeros(int(keep.sum()), dtype=np.int8))
        starts.append(np.full(int(keep.sum()), np.nan))
    if "date" in config.window_kinds and n - min_base >= min_n:
        span = config.window_days * _DAY_SECONDS
        block = np.floor((t_usable - origin) / span).astype(np.int64)
        lo = np.flatnonzero(np.concatenate(([True], block[1:] != block[:-1])))
        hi = np.append(lo[1:], n)
        keep = (hi - lo >= min_n) & (lo >= min_base)
        los.append(lo[keep])
        his.append(hi[keep])
        kinds.append(np.ones(int(keep.sum()), dtype=np.int8))
        starts.append(origin + block[lo[keep]] * span)
    if not los:
        empty = np.zeros(0, dtype=np.int64)
        return _Windows(empty, empty, np.zeros(0, dtype=np.int8), np.zeros(0))
    return _Windows(
        np.concatenate(los), np.concatenate(his), np.concatenate(kinds), np.concatenate(starts)
    )


# --------------------------------------------------------------------------------------------
# Internals: per-detector results
# --------------------------------------------------------------------------------------------


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


def _cumsum0(x: np.ndarray) -> np.ndarray:
    out = np.empty(x.size + 1, dtype=float)
    out[0] = 0.0
    np.cumsum(x, out=out[1:])
    return out


def _agreement(r: _Rater, c: DriftConfig, origin: float) -> _Result | None:
    usable = ~np.isnan(r.agreement)
    pos = np.flatnonzero(usable)
    w = _windows(r.t[pos], c.window_size, c.min_window, c.min_baseline, c, origin)
    if not len(w):
        return None
    x = r.agreement[pos]
    cs, cs2 = _cumsum0(x), _cumsum0(x * x)
    nb = w.lo.astype(float)
    nw = (w.hi - w.lo).astype(float)
    sb, sw = cs[w.lo], cs[w.hi] - cs[w.lo]
    mb, mw = sb / nb, sw / nw
    binary = bool(np.all((x == 0.0) | (x == 1.0)))
    if binary:
        # Fisher, one-sided mid-p: P(X < kw) + P(X = kw) / 2, X ~ Hypergeom(nb + nw, kb + kw, nw).
        kb = np.rint(sb).astype(np.int64)
        kw = np.rint(sw).astype(np.int64)
        big, succ, draws = w.hi, kb + kw, w.hi - w.lo
        p = stats.hypergeom.cdf(kw, big, succ, draws) - 0.5 * stats.hypergeom.pmf(
            kw, big, succ, draws
        )
        p = np.clip(p, 0.0, 1.0)
        stat = sw
        test = "fisher_mid_p"
    else:
        s2b, s2w = cs2[w.lo], cs2[w.hi] - cs2[w.lo]
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


def _gold(r: _Rater, c: DriftConfig, origin: float) -> _Result | None:
    usable = ~np.isnan(r.gold)
    pos = np.flatnonzero(usable)
    w = _windows(r.t[pos], c.gold_window_size, c.min_gold_window, c.min_gold_baseline, c, origin)
    if not len(w):
        return None
    cs = _cumsum0(r.gold[pos])
    nb = w.lo
    nw = w.hi - w.lo
    kb = np.rint(cs[w.lo]).astype(np.int64)
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


def _js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=-1)
        kq = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=-1)
    return np.sqrt(np.clip(0.5 * (kp + kq), 0.0, 1.0))


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so that ``detail`` stays JSON-serialisable."""
    return value.item() if isinstance(value, np.generic) else value


def _labels(
    r: _Rater,
    c: DriftConfig,
    origin: float,
    vocab_values: list[Any],
    pool: np.ndarray | None,
) -> _Result | None:
    pos = np.flatnonzero(r.label >= 0)
    w = _windows(r.t[pos], c.window_size, c.min_window, c.min_baseline, c, origin)
    if not len(w):
        return None
    present, codes = np.unique(r.label[pos], return_inverse=True)
    k = present.size
    onehot_cum = np.zeros((pos.size + 1, k), dtype=np.int64)
    onehot_cum[np.arange(1, pos.size + 1), codes] = 1
    np.cumsum(onehot_cum, axis=0, out=onehot_cum)
    base = onehot_cum[w.lo].astype(float)  # (W, k)
    win = (onehot_cum[w.hi] - onehot_cum[w.lo]).astype(float)
    nb = w.lo.astype(float)[:, None]
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


def _speed(r: _Rater, c: DriftConfig, origin: float) -> _Result | None:
    pos = np.flatnonzero(~np.isnan(r.seconds))
    w = _windows(r.t[pos], c.window_size, c.min_window, c.min_baseline, c, origin)
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
        kb[sl] = cum[rows, w.lo[sl]]
        kw[sl] = cum[rows, w.hi[sl]] - kb[sl]
    nb = w.lo
    nw = w.hi - w.lo
    # Fisher exact, one-sided: P(X >= kw).
    p = stats.hypergeom.sf(kw - 1, nb + nw, kb + kw, nw)
    sb, sw = kb / nb, kw / nw
    p = np.where(sw - sb >= c.min_fast_share_increase, np.clip(p, 0.0, 1.0), 1.0)

    def detail(i: int) -> dict[str, Any]:
        lo, hi = int(w.lo[i]), int(w.hi[i])
        med_b, med_w = float(np.median(sec[:lo])), float(np.median(sec[lo:hi]))
        return {
            "baseline_too_fast": int(kb[i]),
            "window_too_fast": int(kw[i]),
            "relative_cutoff_seconds": float(cut[i]),
            "baseline_median_seconds": med_b,
            "window_median_seconds": med_w,
            "median_ratio": med_w / med_b if med_b > 0 else None,
        }

    return _Result(r, "speed", pos, w, p, kw.astype(float), sb, sw, "fisher_exact", detail)


def _position(r: _Rater, c: DriftConfig, origin: float) -> _Result | None:
    pos = np.flatnonzero(~np.isnan(r.left))
    w = _windows(r.t[pos], c.window_size, c.min_window, 0, c, origin)
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


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _to_datetime(ts: float) -> datetime:
    return _EPOCH + timedelta(seconds=float(ts))


def _window_bounds(res: _Result, i: int, c: DriftConfig) -> tuple[datetime, datetime]:
    w = res.windows
    if w.kind[i] == 1:
        start = _to_datetime(w.block_start[i])
        return start, start + timedelta(days=c.window_days)
    first = int(res.positions[w.lo[i]])
    last = int(res.positions[w.hi[i] - 1])
    at = res.rater.at
    if at is None:
        return _observation_time(res.rater.t[first]), _observation_time(res.rater.t[last])
    return at[first], at[last]


def _observation_time(ts: float) -> datetime:
    """The UTC datetime of an epoch time that is a whole number of microseconds."""
    return _EPOCH + timedelta(microseconds=round(float(ts) * 1e6))


def _flag(res: _Result, adjusted: float, cutoff: float, c: DriftConfig) -> DriftFlag:
    w = res.windows
    m = len(w)
    per_window = cutoff / m
    significant = np.flatnonzero(res.p <= per_window)
    if significant.size == 0:  # guards against rounding in cutoff / m * m
        significant = np.array([int(np.argmin(res.p))])
    last_pos = res.positions[w.hi[significant] - 1]
    # Earliest = smallest last observation; count windows before date windows on ties.
    i = int(significant[np.lexsort((w.kind[significant], last_pos))[0]])
    best = int(np.argmin(res.p))
    start, end = _window_bounds(res, i, c)
    best_start, best_end = _window_bounds(res, best, c)
    detail: dict[str, Any] = {
        "test": res.test,
        "windows_tested": m,
        "windows_significant": int(significant.size),
        "bonferroni_p_value": res.bonferroni,
        "first_index": int(res.positions[w.lo[i]]),
        "last_index": int(res.positions[w.hi[i] - 1]),
        "most_significant_window": {
            "kind": _WINDOW_KINDS[int(w.kind[best])],
            "start": best_start.isoformat(),
            "end": best_end.isoformat(),
            "p_value": float(res.p[best]),
        },
    }
    detail.update(res.detail(i))
    return DriftFlag(
        rater=res.rater.key,
        detector=res.detector,
        window_kind=_WINDOW_KINDS[int(w.kind[i])],
        window_start=start,
        window_end=end,
        n_window=int(w.hi[i] - w.lo[i]),
        n_baseline=int(w.lo[i]),
        baseline_value=float(res.baseline_value[i]),
        window_value=float(res.window_value[i]),
        statistic=float(res.statistic[i]),
        p_value=float(res.p[i]),
        adjusted_p_value=float(adjusted),
        threshold=float(per_window),
        detail=detail,
    )


def detect_drift(
    streams: Mapping[str | int, Sequence[Observation]],
    config: DriftConfig = DEFAULT_CONFIG,
    pool_labels: Mapping[str | int, float] | None = None,
) -> list[DriftFlag]:
    """Flag raters whose recent windows are significantly worse than their own baseline.

    Args:
        streams: rater key -> that rater's observations. Order within a stream does not matter
            (observations are sorted by ``at``, ties keep input order).
        config: thresholds and window definitions, see :class:`DriftConfig`.
        pool_labels: optional label -> count (or weight) over the whole rater pool; used only
            to report, for label-distribution flags, how far the rater's baseline and window are
            from the pool (``js_baseline_vs_pool``, ``js_window_vs_pool`` in ``detail``).

    Returns:
        At most one flag per (rater, detector), for the pairs rejected by Benjamini-Hochberg at
        ``config.fdr`` over all (rater, detector) pairs with at least one testable window
        (each pair's p-value is its Bonferroni-corrected most significant window). Each flag
        describes the earliest window (by its last observation) whose p-value is below the
        pair's per-window cut-off. Sorted by adjusted p-value, then rater, then detector.

    Raises:
        ValueError: on naive datetimes or out-of-range values.
    """
    vocab: dict[Any, int] = {}
    if pool_labels is not None:
        for label in pool_labels:
            vocab.setdefault(label, len(vocab))
    raters = [_prepare(key, obs, vocab) for key, obs in streams.items() if len(obs)]
    return _detect(raters, vocab, pool_labels, config)


def detect_drift_columns(
    rater: Sequence[str | int] | np.ndarray,
    at: Sequence[float] | np.ndarray,
    *,
    agreement: Sequence[float] | np.ndarray | None = None,
    gold_correct: Sequence[float] | np.ndarray | None = None,
    label: Sequence[int] | np.ndarray | None = None,
    label_values: Sequence[Any] | None = None,
    seconds: Sequence[float] | np.ndarray | None = None,
    min_seconds: Sequence[float] | np.ndarray | None = None,
    left_pick: Sequence[float] | np.ndarray | None = None,
    config: DriftConfig = DEFAULT_CONFIG,
    pool_labels: Mapping[str | int, float] | None = None,
) -> list[DriftFlag]:
    """:func:`detect_drift` for observations given as parallel columns instead of objects.

    Observation ``i`` is by rater ``rater[i]`` at ``at[i]`` (seconds since the Unix epoch,
    UTC). The optional signals are numbers with NaN for "none": ``agreement``, ``seconds``,
    ``min_seconds`` as in :class:`Observation`; ``gold_correct`` and ``left_pick`` as 1.0
    (True), 0.0 (False) or NaN. ``label`` holds integer codes, -1 for none, and
    ``label_values[code]`` is the label of a code. A column not given is "none" everywhere.

    Returns exactly what :func:`detect_drift` returns for the streams
    ``{rater[i]: [Observation(at=UTC datetime of at[i], ...), ...]}`` built in input order
    (times are taken to the microsecond, as datetimes are): same flags, same p-values, same
    details. Flag times are UTC datetimes; rater keys are Python scalars. The work is the
    same per rater, without building one Python object per observation.

    Raises:
        ValueError: on columns of different lengths, non-numeric or out-of-range values,
            non-finite times, or label codes outside ``label_values``.
    """
    vocab: dict[Any, int] = {}
    if pool_labels is not None:
        for value in pool_labels:
            vocab.setdefault(value, len(vocab))
    signals = {
        "agreement": agreement,
        "gold_correct": gold_correct,
        "seconds": seconds,
        "min_seconds": min_seconds,
        "left_pick": left_pick,
    }
    raters = _raters_from_columns(rater, at, signals, label, label_values, vocab)
    return _detect(raters, vocab, pool_labels, config)


def _detect(
    raters: list[_Rater],
    vocab: dict[Any, int],
    pool_labels: Mapping[str | int, float] | None,
    config: DriftConfig,
) -> list[DriftFlag]:
    """The detectors, the Bonferroni and Benjamini-Hochberg steps and the flags (see
    :func:`detect_drift`), on raters already prepared and validated."""
    pool_vec: np.ndarray | None = None
    if pool_labels is not None:
        pool_vec = np.array([float(pool_labels[label]) for label in pool_labels])
        if (pool_vec < 0).any() or not np.isfinite(pool_vec).all():
            raise ValueError("pool_labels weights must be finite and non-negative")
    if not raters:
        return []
    if config.date_origin is not None:
        origin = (config.date_origin - _EPOCH) / _SECOND
    else:
        first = min(float(r.t[0]) for r in raters)
        origin = math.floor(first / _DAY_SECONDS) * _DAY_SECONDS
    vocab_values = list(vocab)

    results: list[_Result] = []
    for r in raters:
        for name in config.detectors:
            if name == "agreement":
                res = _agreement(r, config, origin)
            elif name == "gold_accuracy":
                res = _gold(r, config, origin)
            elif name == "label_distribution":
                res = _labels(r, config, origin, vocab_values, pool_vec)
            elif name == "speed":
                res = _speed(r, config, origin)
            else:
                res = _position(r, config, origin)
            if res is not None:
                results.append(res)
    if not results:
        return []
    family = np.array([res.bonferroni for res in results])
    adjusted = np.array(benjamini_hochberg(family))
    rejected = np.flatnonzero(adjusted <= config.fdr)
    if rejected.size == 0:
        return []
    # BH rejects exactly the pairs with family p <= fdr * R / N (R rejections among N pairs),
    # so any window whose Bonferroni p is below that cut-off would yield the same flags.
    cutoff = config.fdr * rejected.size / family.size
    flags = [_flag(results[i], adjusted[i], cutoff, config) for i in rejected.tolist()]
    rank = {name: i for i, name in enumerate(DETECTORS)}
    flags.sort(key=lambda f: (f.adjusted_p_value, str(f.rater), rank[f.detector]))
    return flags
