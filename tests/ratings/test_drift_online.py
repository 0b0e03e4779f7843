"""Online drift detection: complete windows, each tested once at a fixed level; flag re-checks."""

from __future__ import annotations

import numpy as np
import pytest

from ratings.drift import (
    DEFAULT_ONLINE_CONFIG,
    OnlineConfig,
    detect_drift_online_columns,
    drift_support_columns,
)

START = 1_750_000_000.0
HOUR = 3600.0


def stream(
    rng: np.random.Generator,
    n: int,
    *,
    rater: str = "ann",
    drift_at: int | None = None,
    recover_at: int | None = None,
    shift: float = 0.0,
    noise: float = 0.0,
) -> dict:
    """One rater's Likert judgments as the service's columns: residual and agreement against
    two other raters' mean, label, seconds. After ``drift_at`` the rater is ``shift`` points
    more lenient and ``noise`` points noisier, until ``recover_at``."""
    i = np.arange(n)
    drifting = np.zeros(n, dtype=bool)
    if drift_at is not None:
        drifting = (i >= drift_at) & (i < (recover_at if recover_at is not None else n))
    truth = rng.normal(3, 1, n)
    others = np.clip(np.rint(truth[:, None] + rng.normal(0, 0.5, (n, 2))), 1, 5).mean(axis=1)
    raw = truth + rng.normal(0, 0.5, n) + np.where(drifting, shift, 0.0)
    raw += rng.normal(0, 1, n) * np.where(drifting, noise, 0.0)
    value = np.clip(np.rint(raw), 1, 5)
    residual = (value - others) / 4
    return {
        "rater": np.array([rater] * n, dtype=object),
        "at": START + i * HOUR,
        "agreement": 1 - np.abs(residual),
        "residual": residual,
        "label": (value - 1).astype(np.int64),
        "label_values": [1, 2, 3, 4, 5],
        "seconds": rng.lognormal(np.log(40), 0.4, n),
    }


def join(*parts: dict) -> dict:
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "label_values"}
    out["label_values"] = parts[0]["label_values"]
    return out


def head(columns: dict, k: int) -> dict:
    return {key: (value[:k] if key != "label_values" else value) for key, value in columns.items()}


def test_only_complete_windows_are_tested_and_each_once():
    c = stream(np.random.default_rng(1), 300)
    config = DEFAULT_ONLINE_CONFIG
    # 139 observations: the baseline (40) and no complete window of 100 yet
    first = detect_drift_online_columns(head(c, 139), {}, config)
    assert first.windows_tested == 0 and first.alarms == []
    second = detect_drift_online_columns(head(c, 140), first.tested, config)
    assert second.tested[("ann", "agreement")] == 1
    # a window starts every 25 observations: 164 still holds only the first one
    third = detect_drift_online_columns(head(c, 164), second.tested, config)
    assert third.windows_tested == 0
    fourth = detect_drift_online_columns(head(c, 165), third.tested, config)
    assert fourth.tested[("ann", "agreement")] == 2
    # the same data again tests nothing: a verdict is final
    again = detect_drift_online_columns(head(c, 165), fourth.tested, config)
    assert again.windows_tested == 0 and again.alarms == []


def test_leniency_is_flagged_in_the_first_window_after_it_with_its_evidence():
    rng = np.random.default_rng(2)
    c = stream(rng, 400, drift_at=200, shift=1.5)
    result = detect_drift_online_columns(c, {}, DEFAULT_ONLINE_CONFIG)
    lenient = [a for a in result.alarms if a.detector == "leniency"]
    assert lenient, result.alarms
    first = lenient[0]
    assert first.detail["last_index"] >= 200  # the window holds drifted judgments
    assert first.detail["last_index"] <= 300  # found within 100 judgments of the drift
    assert first.p_value <= DEFAULT_ONLINE_CONFIG.alpha == first.threshold
    assert first.window_value > first.baseline_value
    assert first.detail["direction"] == "more lenient"
    assert "guarantee" in first.detail and first.to_dict()["window_start"]


def test_noise_lowers_agreement():
    c = stream(np.random.default_rng(3), 400, drift_at=200, noise=2.0)
    result = detect_drift_online_columns(c, {}, DEFAULT_ONLINE_CONFIG)
    assert any(a.detector == "agreement" for a in result.alarms)


def test_steady_raters_are_not_flagged():
    rng = np.random.default_rng(4)
    c = join(*(stream(rng, 600, rater=f"r{k}") for k in range(40)))
    result = detect_drift_online_columns(c, {}, DEFAULT_ONLINE_CONFIG)
    assert result.windows_tested == 40 * 4 * 19  # (600 - 40 - 100) // 25 + 1 per detector
    assert result.alarms == []


def test_a_rater_result_does_not_depend_on_the_others():
    rng = np.random.default_rng(5)
    a = stream(rng, 300, rater="a", drift_at=150, shift=1.5)
    b = stream(rng, 300, rater="b", drift_at=100, shift=-1.5)
    both = detect_drift_online_columns(join(a, b), {}, DEFAULT_ONLINE_CONFIG)
    alone = detect_drift_online_columns(a, {}, DEFAULT_ONLINE_CONFIG)
    assert [f.to_dict() for f in both.alarms if f.rater == "a"] == [
        f.to_dict() for f in alone.alarms
    ]
    assert {k: v for k, v in both.tested.items() if k[0] == "a"} == alone.tested


def test_repeated_looks_give_the_same_alarms_as_one_look():
    """Whatever the cadence, each window is judged once on the same data: the alarms of many
    small steps equal those of one call (signals fixed once observed)."""
    c = stream(np.random.default_rng(6), 400, drift_at=220, shift=1.0, noise=1.0)
    once = detect_drift_online_columns(c, {}, DEFAULT_ONLINE_CONFIG)
    tested: dict = {}
    alarms = []
    for k in range(1, 401, 7):
        step = detect_drift_online_columns(head(c, k), tested, DEFAULT_ONLINE_CONFIG)
        tested = step.tested
        alarms += step.alarms
    last = detect_drift_online_columns(c, tested, DEFAULT_ONLINE_CONFIG)
    alarms += last.alarms

    def key(f):
        return (f.detector, f.detail["window_index"])

    assert len(once.alarms) >= 2
    assert [f.to_dict() for f in sorted(alarms, key=key)] == [
        f.to_dict() for f in sorted(once.alarms, key=key)
    ]


def test_support_follows_the_latest_data():
    rng = np.random.default_rng(7)
    persisting = stream(rng, 500, drift_at=200, shift=1.5)
    recovered = stream(rng, 500, rater="bob", drift_at=200, recover_at=300, shift=1.5)
    flags = []
    for c in (persisting, recovered):
        found = detect_drift_online_columns(head(c, 300), {}, DEFAULT_ONLINE_CONFIG)
        flag = next(a for a in found.alarms if a.detector == "leniency")
        flags.append(
            (flag.rater, "leniency", flag.window_start.timestamp(), flag.window_end.timestamp())
        )
    # just after the flag: the flagged window itself, on the current data
    early = drift_support_columns(join(head(persisting, 300), head(recovered, 300)), flags)
    assert [s.basis for s in early] == ["flagged_window", "flagged_window"]
    assert all(s.supported for s in early)
    late = drift_support_columns(join(persisting, recovered), flags)
    assert [s.basis for s in late] == ["latest_window", "latest_window"]
    assert late[0].supported and late[0].p_value <= 0.05
    assert not late[1].supported and late[1].p_value > 0.05
    assert late[1].to_dict()["n_since"] >= 100


def test_support_of_an_unknown_rater_or_detector_is_none():
    c = stream(np.random.default_rng(8), 200)
    assert drift_support_columns(c, [("zed", "agreement", START, START + HOUR)]) == [None]
    assert drift_support_columns(c, [("ann", "nonsense", START, START + HOUR)]) == [None]
    # no baseline before the window
    assert drift_support_columns(c, [("ann", "agreement", START - HOUR, START + HOUR)]) == [None]


def test_the_guarantee_in_judgments():
    assert DEFAULT_ONLINE_CONFIG.false_alarm_judgments() == 83_333  # 25 / (5e-5 x 6)
    assert OnlineConfig(window_step=50, alpha=1e-4).false_alarm_judgments(5) == 100_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_size": 0}, "window_size"),
        ({"window_step": 150}, "step"),
        ({"alpha": 0.0}, "alpha"),
        ({"support_level": 1.0}, "support_level"),
        ({"max_baseline": 0}, "max_baseline"),
    ],
)
def test_bad_configurations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OnlineConfig(**kwargs)
