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

from ratings.drift.detect import DEFAULT_CONFIG, detect_drift, detect_drift_columns
from ratings.drift.measures import benjamini_hochberg, jensen_shannon_distance
from ratings.drift.online import (
    DEFAULT_ONLINE_CONFIG,
    GUARANTEE,
    OnlineConfig,
    OnlineResult,
    Support,
    detect_drift_online_columns,
    drift_support_columns,
)
from ratings.drift.types import DETECTORS, DriftConfig, DriftFlag, Observation

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_ONLINE_CONFIG",
    "GUARANTEE",
    "OnlineConfig",
    "OnlineResult",
    "Support",
    "detect_drift_online_columns",
    "drift_support_columns",
    "DETECTORS",
    "DriftConfig",
    "DriftFlag",
    "Observation",
    "benjamini_hochberg",
    "detect_drift",
    "detect_drift_columns",
    "jensen_shannon_distance",
]
