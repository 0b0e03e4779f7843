"""``detect_drift_columns`` gives exactly what ``detect_drift`` gives on the same observations."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from ratings.drift import DriftConfig, Observation, detect_drift, detect_drift_columns

START = datetime(2025, 3, 3, tzinfo=UTC).timestamp()
DAY = 86_400.0
LABELS = ["low", "mid", "high", "other"]  # "other" is never used


def columns(seed: int) -> dict:
    """Eight raters over 40 days, all signals; two drift in agreement, labels, speed and side."""
    rng = np.random.default_rng(seed)
    n = 8 * 700
    rater = rng.choice([f"r{i}" for i in range(8)], n)
    at = START + rng.uniform(0, 40 * DAY, n)
    at[:50] = at[50:100]  # ties in time keep the input order
    late = at > START + 25 * DAY
    bad = np.isin(rater, ["r1", "r5"]) & late
    agreement = np.clip(rng.normal(np.where(bad, 0.55, 0.85), 0.1), 0, 1)
    agreement[rng.random(n) < 0.1] = np.nan
    gold = np.where(rng.random(n) < 0.2, (rng.random(n) < np.where(bad, 0.5, 0.9)) * 1.0, np.nan)
    label = np.where(bad, rng.choice([0, 2], n), rng.choice([0, 1, 2], n))
    label[rng.random(n) < 0.05] = -1
    seconds = np.where(bad, rng.uniform(1, 4, n), rng.uniform(20, 60, n))
    seconds[rng.random(n) < 0.05] = np.nan
    min_seconds = np.where(rng.random(n) < 0.5, 10.0, np.nan)
    decisive = rng.random(n) < 0.3
    left_pick = np.where(decisive, (rng.random(n) < np.where(bad, 0.85, 0.5)) * 1.0, np.nan)
    return {
        "rater": rater,
        "at": at,
        "agreement": agreement,
        "gold_correct": gold,
        "label": label,
        "seconds": seconds,
        "min_seconds": min_seconds,
        "left_pick": left_pick,
    }


def as_streams(c: dict) -> dict[str, list[Observation]]:
    def value(x: float) -> float | None:
        return None if np.isnan(x) else float(x)

    streams: dict[str, list[Observation]] = {}
    for i in range(c["rater"].size):
        flag = {k: value(c[k][i]) for k in ("gold_correct", "left_pick")}
        streams.setdefault(str(c["rater"][i]), []).append(
            Observation(
                at=datetime.fromtimestamp(float(c["at"][i]), tz=UTC),
                agreement=value(c["agreement"][i]),
                gold_correct=None if flag["gold_correct"] is None else bool(flag["gold_correct"]),
                label=LABELS[c["label"][i]] if c["label"][i] >= 0 else None,
                seconds=value(c["seconds"][i]),
                min_seconds=value(c["min_seconds"][i]),
                left_pick=None if flag["left_pick"] is None else bool(flag["left_pick"]),
            )
        )
    return streams


@pytest.mark.parametrize(
    ("seed", "config", "pool"),
    [
        (1, DriftConfig(), None),
        (2, DriftConfig(window_kinds=("date",), window_days=5), {"mid": 5.0, "zzz": 1.0}),
        (3, DriftConfig(detectors=("label_distribution", "speed"), fdr=0.2), {"high": 2.0}),
    ],
)
def test_columns_give_the_same_flags_as_observations(seed, config, pool) -> None:
    c = columns(seed)
    expected = detect_drift(as_streams(c), config, pool_labels=pool)
    got = detect_drift_columns(
        c["rater"],
        c["at"],
        agreement=c["agreement"],
        gold_correct=c["gold_correct"],
        label=c["label"],
        label_values=LABELS,
        seconds=c["seconds"],
        min_seconds=c["min_seconds"],
        left_pick=c["left_pick"],
        config=config,
        pool_labels=pool,
    )
    assert expected, "the scenario should produce flags"
    assert [f.to_dict() for f in got] == [f.to_dict() for f in expected]
    assert {"r1", "r5"} <= {f.rater for f in got}
    assert all(type(f.rater) is str for f in got)


def test_columns_not_given_are_missing() -> None:
    c = columns(4)
    only_agreement = detect_drift_columns(c["rater"], c["at"], agreement=c["agreement"])
    assert {f.detector for f in only_agreement} == {"agreement"}
    assert detect_drift_columns([], []) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"agreement": [0.5]}, "one value per observation"),
        ({"agreement": [0.5, 1.5]}, "agreement must be in"),
        ({"gold_correct": [0.5, 1.0]}, "gold_correct must be a bool"),
        ({"seconds": ["fast", 1.0]}, "seconds must be numbers"),
        ({"label": [0, 1]}, "label needs label_values"),
        ({"label": [0, 2], "label_values": ["a", "b"]}, "label codes"),
        ({"label": [0.0, 1.0], "label_values": ["a", "b"]}, "integer array"),
    ],
)
def test_bad_columns_are_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        detect_drift_columns([1, 2], [START, START + 1], **kwargs)


def test_times_must_be_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        detect_drift_columns([1], [np.nan])
