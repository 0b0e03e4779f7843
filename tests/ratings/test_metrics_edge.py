"""Edge cases of the agreement metrics (issue 14): every kind of NaN is missing on every path,
the reason texts, and table tests against the ``krippendorff`` package and scikit-learn."""

from __future__ import annotations

import krippendorff  # test-only oracles (pyproject's test extras)
import numpy as np
import pytest
import sklearn.metrics as sklearn_metrics

from ratings.metrics import (
    cohen_kappa,
    cohen_kappa_result,
    fleiss_kappa,
    fleiss_kappa_result,
    gwet_ac1,
    gwet_ac1_result,
    krippendorff_alpha,
    krippendorff_alpha_result,
    loo_consensus_agreement,
    loo_residuals,
    pairwise_agreement_result,
    percent_agreement,
    percent_agreement_result,
    straight_lining_share,
)
from ratings.metrics.categorical_ci import categorical_cis

MISSING = {
    "None": None,
    "float": float("nan"),
    "float16": np.float16("nan"),
    "float32": np.float32("nan"),
    "float64": np.float64("nan"),
}

# Krippendorff (2011), reliability data C (raters x units), None = missing.
EXAMPLE_C = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
LETTERS = {1: "a", 2: "b", 3: "c", 4: "d", 5: "e"}


def with_missing(rows, marker, mapping=None):
    return [[marker if v is None else (mapping[v] if mapping else v) for v in row] for row in rows]


def to_nan(rows):
    return np.array([[np.nan if v is None else float(v) for v in row] for row in rows])


def transpose(rows):
    return [list(col) for col in zip(*rows, strict=True)]


@pytest.mark.parametrize("marker", MISSING.values(), ids=MISSING.keys())
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_numbers_treat_every_nan_as_missing(marker, level):
    value = krippendorff_alpha(with_missing(EXAMPLE_C, marker), level)
    oracle = krippendorff.alpha(to_nan(EXAMPLE_C), level_of_measurement=level)
    assert value == pytest.approx(oracle, abs=1e-12)


@pytest.mark.parametrize("marker", MISSING.values(), ids=MISSING.keys())
def test_alpha_labels_treat_every_nan_as_missing(marker):
    labelled = with_missing(EXAMPLE_C, marker, LETTERS)
    oracle = krippendorff.alpha(to_nan(EXAMPLE_C), level_of_measurement="nominal")
    assert krippendorff_alpha(labelled, "nominal") == pytest.approx(oracle, abs=1e-12)
    assert round(oracle, 3) == 0.743
    ordered = krippendorff_alpha(labelled, "ordinal", value_order=list("abcde"))
    oracle = krippendorff.alpha(to_nan(EXAMPLE_C), level_of_measurement="ordinal")
    assert ordered == pytest.approx(oracle, abs=1e-12)


@pytest.mark.parametrize("marker", MISSING.values(), ids=MISSING.keys())
def test_categorical_statistics_treat_every_nan_as_missing(marker):
    units = transpose(EXAMPLE_C)
    reference = transpose(with_missing(EXAMPLE_C, None, LETTERS))
    labelled = transpose(with_missing(EXAMPLE_C, marker, LETTERS))
    numbers = transpose(with_missing(EXAMPLE_C, marker))
    for data in (labelled, numbers):
        assert fleiss_kappa(data) == pytest.approx(fleiss_kappa(units))
        assert gwet_ac1(data) == pytest.approx(gwet_ac1(units))
        assert percent_agreement(data) == pytest.approx(percent_agreement(units))
    assert fleiss_kappa(labelled) == pytest.approx(fleiss_kappa(reference))
    ci = categorical_cis(labelled, n_boot=50, seed=1)
    assert ci == categorical_cis(reference, n_boot=50, seed=1)


@pytest.mark.parametrize("marker", MISSING.values(), ids=MISSING.keys())
def test_cohen_kappa_treats_every_nan_as_missing(marker):
    a = ["x", "y", "x", marker, "y", "x", "z"]
    b = ["x", "y", "y", "x", marker, "x", "z"]
    kept = [0, 1, 2, 5, 6]
    oracle = sklearn_metrics.cohen_kappa_score([a[i] for i in kept], [b[i] for i in kept])
    assert cohen_kappa(a, b) == pytest.approx(oracle)
    x = [1, 2, 3, marker, 4, 5, 2]
    y = [1, 3, 3, 2, marker, 5, 2]
    kept_x, kept_y = [1, 2, 3, 5, 2], [1, 3, 3, 5, 2]
    for weights in (None, "linear", "quadratic"):
        oracle = sklearn_metrics.cohen_kappa_score(
            kept_x, kept_y, weights=weights, labels=[1, 2, 3, 4, 5]
        )
        assert cohen_kappa(x, y, weights, labels=[1, 2, 3, 4, 5]) == pytest.approx(oracle)


@pytest.mark.parametrize("marker", MISSING.values(), ids=MISSING.keys())
def test_per_rater_helpers_treat_every_nan_as_missing(marker):
    units = transpose(EXAMPLE_C)
    marked = transpose(with_missing(EXAMPLE_C, marker))
    for level in ("nominal", "interval"):
        assert loo_consensus_agreement(marked, level) == loo_consensus_agreement(units, level)
        assert loo_residuals(marked, level) == loo_residuals(units, level)
    assert straight_lining_share([[1, 1, marker], [2, 3], [marker, 4]]) == 0.5
    votes = [["A", "B", marker], [marker, "tie", "tie"]]
    assert pairwise_agreement_result(votes).value == pytest.approx(0.5)


# Table tests: the statistics against their oracles on seeded random data with gaps.
CASES = [
    (seed, k, raters, gap)
    for seed in (1, 2)
    for k in (2, 3, 5)
    for raters, gap in ((2, 0.0), (4, 0.3))
]


@pytest.mark.parametrize(("seed", "k", "raters", "gap"), CASES)
def test_alpha_table_against_krippendorff(seed, k, raters, gap):
    rng = np.random.default_rng(seed)
    data = rng.integers(1, k + 1, size=(raters, 40)).astype(float)
    data[rng.random(data.shape) < gap] = np.nan
    rows = [[None if np.isnan(v) else int(v) for v in row] for row in data]
    for level in ("nominal", "ordinal", "interval", "ratio"):
        oracle = krippendorff.alpha(data, level_of_measurement=level)
        assert krippendorff_alpha(rows, level) == pytest.approx(oracle, abs=1e-9), level
        f32 = [[np.float32(v) for v in row] for row in data]
        assert krippendorff_alpha(f32, level) == pytest.approx(oracle, abs=1e-9), level


@pytest.mark.parametrize(("seed", "k", "raters", "gap"), CASES)
def test_cohen_table_against_scikit_learn(seed, k, raters, gap):
    rng = np.random.default_rng(seed)
    a = rng.integers(1, k + 1, 60).tolist()
    b = [x if rng.random() < 0.6 else int(rng.integers(1, k + 1)) for x in a]
    labels = list(range(1, k + 2))  # one scale point nobody used
    for weights in (None, "linear", "quadratic"):
        oracle = sklearn_metrics.cohen_kappa_score(a, b, weights=weights, labels=labels)
        assert cohen_kappa(a, b, weights, labels=labels) == pytest.approx(oracle), weights


def test_ac1_uses_the_scale_when_given():
    # two of five Likert points used: q = 5 changes AC1
    units = [[4, 4, 5], [4, 4, 4], [5, 5, 4], [4, 5, 5]]
    observed = gwet_ac1(units)
    scale = gwet_ac1(units, categories=[1, 2, 3, 4, 5])
    assert observed != pytest.approx(scale)
    # Gwet: p_e = sum pi_k (1 - pi_k) / (q - 1)
    pa = np.mean([1 / 3, 1, 1 / 3, 1 / 3])
    pi4 = np.mean([2 / 3, 1, 1 / 3, 1 / 3])
    pe = 2 * pi4 * (1 - pi4) / 4
    assert scale == pytest.approx((pa - pe) / (1 - pe))
    low, high = categorical_cis(units, n_boot=200, seed=0, categories=[1, 2, 3, 4, 5])["gwet_ac1"]
    assert low <= scale <= high


REASONS = [
    (lambda: krippendorff_alpha_result([]), "no units given"),
    (
        lambda: krippendorff_alpha_result([[None, None], [None, None]]),
        "no ratings given: every value is missing",
    ),
    (
        lambda: krippendorff_alpha_result([[1, 2, 3]]),
        "only one rater: there are no pairs of ratings",
    ),
    (
        lambda: krippendorff_alpha_result([[1, 2], [None, np.float32("nan")]]),
        "only one rater: there are no pairs of ratings",
    ),
    (lambda: krippendorff_alpha_result([[1, None], [None, 2]]), "no unit has two or more ratings"),
    (
        lambda: krippendorff_alpha_result([[2, 2], [2, 2]]),
        "only one category used: expected disagreement is 0",
    ),
    (lambda: fleiss_kappa_result([]), "no units given"),
    (lambda: fleiss_kappa_result([[None, None]]), "no ratings given: every value is missing"),
    (
        lambda: fleiss_kappa_result([[1, None], [2, None]]),
        "only one rater: there are no pairs of ratings",
    ),
    (lambda: fleiss_kappa_result([[1, None], [None, 2]]), "no unit has two or more ratings"),
    (
        lambda: fleiss_kappa_result([[1, 1], [1, 1]]),
        "only one category used: expected disagreement is 0",
    ),
    (
        lambda: gwet_ac1_result([[1, 1], [1, 1]]),
        "only one category used: AC1 needs at least two categories (pass the full set as categories)",
    ),
    (
        lambda: percent_agreement_result([[1, None], [2, None]]),
        "only one rater: there are no pairs of ratings",
    ),
    (lambda: pairwise_agreement_result([["A"], ["B"]]), "no item has two or more usable votes"),
    (lambda: cohen_kappa_result([], []), "no units given"),
    (lambda: cohen_kappa_result([1, None], [None, 2]), "no position is rated by both raters"),
    (
        lambda: cohen_kappa_result([1, 1], [1, 1]),
        "only one category used: expected disagreement is 0",
    ),
]


@pytest.mark.parametrize(("compute", "reason"), REASONS)
def test_each_reason_text(compute, reason):
    result = compute()
    assert result.value is None and result.reason == reason


def test_ac1_with_the_scale_and_one_used_category_is_defined():
    assert gwet_ac1_result([[1, 1], [1, 1]], categories=[1, 2]).value == pytest.approx(1.0)
