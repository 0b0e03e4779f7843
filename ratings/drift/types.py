"""The drift detectors' inputs, configuration and output (see the package docstring)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

DetectorName = Literal[
    "agreement", "leniency", "gold_accuracy", "label_distribution", "speed", "position_bias"
]
WindowKind = Literal["count", "date"]

#: Detector names, in the order flags for one rater are reported when p-values tie.
DETECTORS: Final[tuple[str, ...]] = (
    "agreement",
    "leniency",
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
        residual: the judgment's score minus the mean of the other raters' scores of the
            same item, over the scale's range (in [-1, 1]; positive = more lenient).
    """

    at: datetime
    agreement: float | None = None
    gold_correct: bool | None = None
    label: str | int | None = None
    seconds: float | None = None
    min_seconds: float | None = None
    left_pick: bool | None = None
    residual: float | None = None


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
        min_residual_shift: smallest change of the mean residual (window - baseline, either
            way, over the scale's range) worth flagging for ``leniency``.
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
    min_residual_shift: float = 0.08
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
            "min_residual_shift",
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
