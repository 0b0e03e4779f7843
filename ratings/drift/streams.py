"""One rater's observations as columns, and the windows cut from them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ratings.drift.types import _DAY_SECONDS, _EPOCH, _SECOND, DriftConfig, Observation


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
    residual: np.ndarray


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
    residual = _float_column([o.residual for o in obs], "residual", key)[order]
    raw_labels = [o.label for o in obs]
    for value in dict.fromkeys(raw_labels):
        if value is not None:
            vocab.setdefault(value, len(vocab))
    lookup = {**vocab, None: -1}
    label = np.fromiter(map(lookup.__getitem__, raw_labels), dtype=np.int64, count=len(obs))
    label = label[order]
    return _validated(
        _Rater(key, at, t, agreement, gold, label, seconds, min_seconds, left, residual)
    )


def _validated(r: _Rater) -> _Rater:
    """Check the value ranges of one rater's signals (NaN = missing); return the rater."""
    for name, col, lo, hi in (
        ("agreement", r.agreement, 0.0, 1.0),
        ("gold_correct", r.gold, 0.0, 1.0),
        ("left_pick", r.left, 0.0, 1.0),
        ("residual", r.residual, -1.0, 1.0),
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
                    cols["residual"][idx],
                )
            )
        )
    return raters


@dataclass
class _Windows:
    lo: np.ndarray  # first position (in the detector's usable-observation index)
    hi: np.ndarray  # one past the last position
    kind: np.ndarray  # 0 = count, 1 = date
    block_start: np.ndarray  # epoch seconds of the calendar block start (NaN for count)
    base: np.ndarray | None = None  # one past the baseline's last position (None: ``lo``)

    def __post_init__(self) -> None:
        if self.base is None:
            self.base = self.lo

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
