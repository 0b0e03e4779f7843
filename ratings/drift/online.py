"""Drift detection as a service runs it: each complete window tested once, at a fixed level.

The batch procedure of :func:`ratings.drift.detect_drift` (Bonferroni over a pair's windows,
one Benjamini-Hochberg family per call) is valid for one look at the data. A service that
recomputes every 15 minutes looks again and again: the trailing partial window and the
current date window are re-tested as they grow, and every call is a fresh family, so false
alarms add up with the number of calls. Here instead:

* A (rater, detector) stream is cut into **complete** count windows of ``window_size``
  observations with the signal (``gold_window_size`` for gold), one starting every
  ``window_step`` observations after the first ``min_baseline`` (``min_gold_baseline``).
  A partial window is never tested. Each window is compared with the rater's observations
  before it, at most the first ``max_baseline`` of them (a fixed reference once the rater
  has that many, so that a drift never leaks into it).
* Each window is **tested exactly once**, in the first run that sees it complete: the caller
  passes, per (rater, detector), how many windows were tested before (``tested``) and stores
  the new count that the call returns. A window's verdict is final.
* Each test is at the **same fixed level** ``alpha`` (the detector's one-window p-value,
  after its effect-size gate, against the rater's own expanding baseline). There is no
  family to renew per call: the level is spent per window of the rater's work, not per call.

Guarantee. Under "no drift" (the rater's observations with a signal exchangeable over time)
every window's p-value is valid, so the expected number of false alarms of a steady rater is
at most ``alpha`` per window tested, whatever the dependence between windows and however
often the service runs (linearity of expectation; this is the per-family error rate of
online testing with a constant level, the ``alpha``-spending rate of a control chart whose
in-control average run length is ``window_step / alpha`` observations per detector). With
the defaults (a window of 100 starting every 25 observations, ``alpha`` 5e-5, six
detectors) a steady rater gets a false alarm at most once in 83,333 of their judgments on
average (``OnlineConfig.false_alarm_judgments``). References: Tartakovsky,
Nikiforov & Basseville (2014), *Sequential Analysis*, ch. 8 (average run length to false
alarm of repeated fixed-sample tests); Foster & Stine (2008), alpha-investing, JRSS B 70
(online testing with a per-test level).

What a lead sees: an *alarm* is a significant new window; the caller opens a flag on the
first alarm of a (rater, detector) that has no open flag, and later alarms only confirm it.
:func:`drift_support_columns` re-checks an open flag on the latest data.

Pure Python + numpy + scipy; no Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from ratings.drift.detect import _flag, _results
from ratings.drift.detectors import _Result
from ratings.drift.streams import _raters_from_columns, _Windows
from ratings.drift.types import DETECTORS, DriftConfig, DriftFlag

#: What the guarantee sentence says, for the docs and the flags' evidence.
GUARANTEE: Final = (
    "each complete window of a rater's work is tested once at level alpha, so a steady "
    "rater gets a false alarm at most alpha per window tested, however often the service runs"
)


@dataclass(frozen=True)
class OnlineConfig:
    """Knobs of :func:`detect_drift_online_columns`.

    Attributes:
        window_size: observations with the signal per window (all detectors but gold).
        window_step: a new window starts every ``window_step`` observations (windows
            overlap when it is below ``window_size``): a drift is then seen by a window
            entirely after it at most ``window_size + window_step`` observations after it.
        gold_window_size, gold_window_step: the same for gold answers.
        min_baseline, min_gold_baseline: observations before the first window.
        max_baseline, max_gold_baseline: the reference of every window is the rater's
            observations before it, at most the first ``max_baseline`` of them: a drift
            then never leaks into the reference that later windows are compared with.
        alpha: level of each window's test; the expected number of false alarms per steady
            rater and detector is at most ``alpha`` per window.
        support_level: an open flag is *still supported* while the rater's latest window
            (or, before there is one, the flagged window itself on the current data) is worse
            than the baseline before the flag at this level.
        gates: the detectors' effect-size gates and other knobs (``DriftConfig``; its window
            and multiple-testing fields are ignored).
    """

    window_size: int = 100
    window_step: int = 25
    gold_window_size: int = 20
    gold_window_step: int = 10
    min_baseline: int = 40
    min_gold_baseline: int = 20
    max_baseline: int = 200
    max_gold_baseline: int = 40
    alpha: float = 5e-5
    support_level: float = 0.05
    gates: DriftConfig = field(default_factory=DriftConfig)

    def __post_init__(self) -> None:
        for name in (
            "window_size",
            "window_step",
            "gold_window_size",
            "gold_window_step",
            "min_baseline",
            "min_gold_baseline",
            "max_baseline",
            "max_gold_baseline",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.window_step > self.window_size or self.gold_window_step > self.gold_window_size:
            raise ValueError("a window step must not exceed its window size")
        for name in ("alpha", "support_level"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1)")

    def detector_config(self) -> DriftConfig:
        """The batch configuration whose windows are exactly the complete count windows."""
        return replace(
            self.gates,
            window_size=self.window_size,
            min_window=self.window_size,
            gold_window_size=self.gold_window_size,
            min_gold_window=self.gold_window_size,
            min_baseline=self.min_baseline,
            min_gold_baseline=self.min_gold_baseline,
            window_kinds=("count",),
            date_origin=None,
        )

    def false_alarm_judgments(self, detectors: int = len(DETECTORS)) -> int:
        """N in "a steady rater is flagged by mistake at most once in N judgments": at most
        one test per ``window_step`` judgments per detector (a judgment carries each signal
        at most once; gold answers are fewer than judgments, so gold tests are rarer)."""
        return int(math.floor(self.window_step / (self.alpha * detectors)))

    def windows(self, t_usable: np.ndarray, size: int, base: int, gold: bool) -> _Windows:
        """The complete windows of one detector: window ``i`` covers the usable observations
        ``[b + i * step, b + i * step + size)`` (``b`` the minimum baseline), against the
        baseline of every observation before it."""
        step = self.gold_window_step if gold else self.window_step
        cap = max(base, self.max_gold_baseline if gold else self.max_baseline)
        n = t_usable.size
        count = (n - base - size) // step + 1 if n >= base + size else 0
        lo = base + step * np.arange(count, dtype=np.int64)
        return _Windows(
            lo,
            lo + size,
            np.zeros(count, dtype=np.int8),
            np.full(count, np.nan),
            np.minimum(lo, cap),
        )


DEFAULT_ONLINE_CONFIG: Final = OnlineConfig()

TestedKey = tuple[str | int, str]


@dataclass
class OnlineResult:
    """What one call found.

    Attributes:
        alarms: one :class:`DriftFlag` per newly tested window that was significant
            (``p_value <= alpha``), in stream order per (rater, detector). ``threshold`` is
            ``alpha``; ``adjusted_p_value`` equals ``p_value`` (no adjustment is needed);
            ``detail`` holds ``window_index`` and ``guarantee`` besides the usual evidence.
        tested: the new count of tested windows per (rater, detector), to store.
        windows_tested: how many windows this call tested (all raters and detectors).
    """

    alarms: list[DriftFlag]
    tested: dict[TestedKey, int]
    windows_tested: int


def _columns_raters(columns: Mapping[str, Any], pool_labels: Mapping[Any, float] | None):
    vocab: dict[Any, int] = {}
    if pool_labels is not None:
        for value in pool_labels:
            vocab.setdefault(value, len(vocab))
    signals = {
        name: columns.get(name)
        for name in (
            "agreement",
            "gold_correct",
            "seconds",
            "min_seconds",
            "left_pick",
            "residual",
        )
    }
    raters = _raters_from_columns(
        columns["rater"],
        columns["at"],
        signals,
        columns.get("label"),
        columns.get("label_values"),
        vocab,
    )
    return raters, vocab


def detect_drift_online_columns(
    columns: Mapping[str, Any],
    tested: Mapping[TestedKey, int],
    config: OnlineConfig = DEFAULT_ONLINE_CONFIG,
    pool_labels: Mapping[Any, float] | None = None,
) -> OnlineResult:
    """Test the complete windows that were not tested before (see the module docstring).

    Args:
        columns: parallel observation columns as :func:`ratings.drift.detect_drift_columns`
            takes them: ``rater``, ``at`` (epoch seconds) and any of ``agreement``,
            ``gold_correct``, ``label`` with ``label_values``, ``seconds``, ``min_seconds``,
            ``left_pick`` (NaN or -1 for none).
        tested: (rater key, detector) -> windows already tested; missing means 0.
        config: window sizes, level and gates.
        pool_labels: as in ``detect_drift`` (reporting only).

    Each rater's result depends only on that rater's observations and ``tested`` entries,
    so a call on a subset of raters gives those raters' results unchanged.

    Raises:
        ValueError: as ``detect_drift_columns``.
    """
    raters, vocab = _columns_raters(columns, pool_labels)
    c = config.detector_config()
    results = _results(raters, vocab, pool_labels, c, 0.0, config.windows)
    alarms: list[DriftFlag] = []
    new_tested: dict[TestedKey, int] = dict(tested)
    count = 0
    for res in results:
        key = (res.rater.key, res.detector)
        done = int(tested.get(key, 0))
        m = len(res.windows)
        if m <= done:
            continue
        count += m - done
        new_tested[key] = m
        for i in range(done, m):
            if res.p[i] <= config.alpha:
                alarms.append(_alarm(res, i, config, c))
    return OnlineResult(alarms=alarms, tested=new_tested, windows_tested=count)


def _alarm(res: _Result, i: int, config: OnlineConfig, c: DriftConfig) -> DriftFlag:
    one = _single(res, i)
    flag = _flag(one, float(res.p[i]), config.alpha, c)
    flag.detail.update(
        {
            "window_index": i,
            "windows_tested": i + 1,
            "alpha": config.alpha,
            "guarantee": GUARANTEE,
        }
    )
    return flag


def _single(res: _Result, i: int) -> _Result:
    """The result restricted to window ``i`` (so that the flag reports exactly that one)."""
    w = res.windows
    sl = slice(i, i + 1)
    windows = _Windows(w.lo[sl], w.hi[sl], w.kind[sl], w.block_start[sl], w.base[sl])

    def detail(_: int) -> dict[str, Any]:
        return res.detail(i)

    return _Result(
        res.rater,
        res.detector,
        res.positions,
        windows,
        res.p[sl],
        res.statistic[sl],
        res.baseline_value[sl],
        res.window_value[sl],
        res.test,
        detail,
    )


@dataclass(frozen=True)
class Support:
    """Whether the latest data still supports a flag.

    Attributes:
        supported: ``p_value <= support_level`` (the effect-size gate included).
        basis: ``"latest_window"`` (the rater's last ``window_size`` observations with the
            signal after the flagged window) or ``"flagged_window"`` (too few since: the
            flagged window again, on the current data).
        p_value, baseline_value, window_value: the re-check's test, baseline = the rater's
            observations before the flagged window.
        n_window, n_since: observations in the re-checked window; observations with the
            signal after the flagged window.
    """

    supported: bool
    basis: str
    p_value: float
    baseline_value: float
    window_value: float
    n_window: int
    n_since: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "supported": self.supported,
            "basis": self.basis,
            "p_value": self.p_value,
            "baseline_value": self.baseline_value,
            "window_value": self.window_value,
            "n_window": self.n_window,
            "n_since": self.n_since,
        }


def drift_support_columns(
    columns: Mapping[str, Any],
    flags: Sequence[tuple[str | int, str, float, float]],
    config: OnlineConfig = DEFAULT_ONLINE_CONFIG,
) -> list[Support | None]:
    """Re-check flags on the current data.

    Args:
        columns: as :func:`detect_drift_online_columns`.
        flags: (rater key, detector, window start, window end) per flag, times in epoch
            seconds (the flagged window's first and last observation).
        config: as :func:`detect_drift_online_columns`.

    Returns:
        Per flag, a :class:`Support`, or None when the rater has no usable baseline before
        the flagged window any more (for example after their judgments were edited).
    """
    raters, vocab = _columns_raters(columns, None)
    by_key = {r.key: r for r in raters}
    c = config.detector_config()
    out: list[Support | None] = []
    for rater, detector, start, end in flags:
        r = by_key.get(rater)
        if r is None or detector not in DETECTORS:
            out.append(None)
            continue
        seen: list[tuple[int, str]] = []  # (observations since the flag, basis)

        def make(
            t: np.ndarray, size: int, _base: int, _gold: bool, start=start, end=end, seen=seen
        ) -> _Windows:
            base = int(np.searchsorted(t, start, side="left"))
            flagged_hi = int(np.searchsorted(t, end, side="right"))
            n = t.size
            if base < 1 or flagged_hi <= base:
                empty = np.zeros(0, dtype=np.int64)
                return _Windows(empty, empty, np.zeros(0, dtype=np.int8), np.zeros(0), empty)
            if n - flagged_hi >= size:
                lo, hi, basis = n - size, n, "latest_window"
            else:
                lo, hi, basis = base, flagged_hi, "flagged_window"
            seen.append((n - flagged_hi, basis))
            return _Windows(
                np.array([lo], dtype=np.int64),
                np.array([hi], dtype=np.int64),
                np.zeros(1, dtype=np.int8),
                np.full(1, np.nan),
                np.array([base], dtype=np.int64),
            )

        res = _results([r], vocab, None, replace(c, detectors=(detector,)), 0.0, make)
        if not res or not seen:
            out.append(None)
            continue
        one, (n_since, basis) = res[0], seen[0]
        w = one.windows
        p = float(one.p[0])
        out.append(
            Support(
                supported=p <= config.support_level,
                basis=basis,
                p_value=p,
                baseline_value=float(one.baseline_value[0]),
                window_value=float(one.window_value[0]),
                n_window=int(w.hi[0] - w.lo[0]),
                n_since=int(n_since),
            )
        )
    return out
