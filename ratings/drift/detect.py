"""Entry points: run every detector for every rater, correct for multiplicity, flag."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ratings.drift.detectors import (
    _agreement,
    _gold,
    _labels,
    _leniency,
    _MakeWindows,
    _position,
    _Result,
    _speed,
)
from ratings.drift.measures import benjamini_hochberg
from ratings.drift.streams import _prepare, _Rater, _raters_from_columns
from ratings.drift.types import (
    _DAY_SECONDS,
    _EPOCH,
    _SECOND,
    _WINDOW_KINDS,
    DEFAULT_CONFIG,
    DETECTORS,
    DriftConfig,
    DriftFlag,
    Observation,
)


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
    residual: Sequence[float] | np.ndarray | None = None,
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
        "residual": residual,
    }
    raters = _raters_from_columns(rater, at, signals, label, label_values, vocab)
    return _detect(raters, vocab, pool_labels, config)


def _results(
    raters: list[_Rater],
    vocab: dict[Any, int],
    pool_labels: Mapping[str | int, float] | None,
    config: DriftConfig,
    origin: float,
    make: _MakeWindows | None = None,
) -> list[_Result]:
    """Every configured detector on every rater: the windows and their p-values (``make``
    cuts other windows than the configured ones)."""
    pool_vec: np.ndarray | None = None
    if pool_labels is not None:
        pool_vec = np.array([float(pool_labels[label]) for label in pool_labels])
    vocab_values = list(vocab)
    results: list[_Result] = []
    for r in raters:
        for name in config.detectors:
            if name == "agreement":
                res = _agreement(r, config, origin, make)
            elif name == "leniency":
                res = _leniency(r, config, origin, make)
            elif name == "gold_accuracy":
                res = _gold(r, config, origin, make)
            elif name == "label_distribution":
                res = _labels(r, config, origin, vocab_values, pool_vec, make)
            elif name == "speed":
                res = _speed(r, config, origin, make)
            else:
                res = _position(r, config, origin, make)
            if res is not None:
                results.append(res)
    return results


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
    results = _results(raters, vocab, pool_labels, config, origin)
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
