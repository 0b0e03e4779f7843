"""Agreement metrics checked against published worked examples and independent oracles.

The oracles (``krippendorff``, scikit-learn, statsmodels) are test-only dependencies.
"""

from __future__ import annotations

import dataclasses
import math

import krippendorff  # test-only oracles (pyproject's test extras): a missing one fails
import numpy as np
import pytest
import sklearn.metrics as sklearn_metrics
import statsmodels.stats.inter_rater as inter_rater
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ratings.metrics import (
    MetricResult,
    bootstrap_ci,
    cohen_kappa,
    cohen_kappa_result,
    distribution_divergence,
    fleiss_kappa,
    fleiss_kappa_result,
    gwet_ac1,
    gwet_ac1_result,
    krippendorff_alpha,
    krippendorff_alpha_ci,
    krippendorff_alpha_result,
    loo_consensus_agreement,
    loo_residuals,
    pairwise_agreement,
    pairwise_agreement_result,
    percent_agreement,
    percent_agreement_result,
    position_bias,
    straight_lining_share,
)
from ratings.metrics.bootstrap import pattern_multiplicities, resample_index_blocks

LEVELS = ("nominal", "ordinal", "interval", "ratio")

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", reliability data C:
# observers A-D (rows) x units 1-12 (columns), None = missing.
EXAMPLE_C = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
EXAMPLE_C_PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}

# Fleiss (1971): 30 patients x 6 psychiatrists, diagnoses 1-5 (1 depression, 2 personality
# disorder, 3 schizophrenia, 4 neurosis, 5 other), as raw labels per subject. Published kappa
# 0.430. The same table is in statsmodels' test suite and R's irr::diagnoses.
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4],
    [2, 2, 2, 5, 5, 5],
    [2, 3, 3, 3, 3, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3],
    [3, 3, 3, 3, 5, 5],
    [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4],
    [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4],
    [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3],
    [1, 4, 4, 4, 4, 4],
    [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5],
    [1, 1, 1, 1, 1, 2],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 4, 4, 4, 4, 4],
    [2, 2, 4, 5, 5, 5],
    [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4],
    [1, 1, 1, 1, 5, 5],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3],
    [5, 5, 5, 5, 5, 5],
]


def transpose(rows):
    return [list(col) for col in zip(*rows, strict=True)]


def to_nan(rows):
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def random_reliability_data(rng, n_raters, n_units, n_values, missing):
    """Raters x units ints in 1..n_values with a share of None; every unit pairable."""
    data = rng.integers(1, n_values + 1, size=(n_raters, n_units)).astype(object)
    data[rng.random((n_raters, n_units)) < missing] = None
    data[0, :] = rng.integers(1, n_values + 1, size=n_units)
    data[1, :] = rng.integers(1, n_values + 1, size=n_units)
    return data.tolist()


# ---------------------------------------------------------------------------
# Krippendorff's alpha
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_krippendorff_2011_example_c(level):
    value = krippendorff_alpha(EXAMPLE_C, level)
    assert round(value, 3) == EXAMPLE_C_PUBLISHED[level]
    oracle = krippendorff.alpha(to_nan(EXAMPLE_C), level_of_measurement=level)
    assert round(oracle, 3) == EXAMPLE_C_PUBLISHED[level]
    assert value == pytest.approx(oracle, abs=1e-12)


def test_alpha_example_c_sample_sizes():
    result = krippendorff_alpha_result(EXAMPLE_C, "interval")
    # Unit 12 has a single value and is not pairable; 40 pairable values remain (Krippendorff's n).
    assert result == MetricResult(result.value, None, 12, 11, 40)


def test_alpha_example_c_with_labels():
    names = {1: "very low", 2: "low", 3: "mid", 4: "high", 5: "very high"}
    labelled = [[None if v is None else names[v] for v in row] for row in EXAMPLE_C]
    assert round(krippendorff_alpha(labelled, "nominal"), 3) == 0.743
    order = list(names.values())
    assert round(krippendorff_alpha(labelled, "ordinal", value_order=order), 3) == 0.815
    with pytest.raises(ValueError):
        krippendorff_alpha(labelled, "ordinal")
    with pytest.raises(ValueError):
        krippendorff_alpha(labelled, "ordinal", value_order=order[:-1])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(
    ("seed", "n_raters", "n_units", "n_values", "missing"),
    [(0, 2, 10, 2, 0.0), (1, 3, 50, 5, 0.2), (2, 5, 300, 7, 0.4), (3, 12, 80, 4, 0.6)],
)
def test_alpha_matches_krippendorff_package(level, seed, n_raters, n_units, n_values, missing):
    rng = np.random.default_rng(seed)
    data = random_reliability_data(rng, n_raters, n_units, n_values, missing)
    oracle = krippendorff.alpha(to_nan(data), level_of_measurement=level)
    assert krippendorff_alpha(data, level) == pytest.approx(oracle, abs=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_alpha_nominal_string_and_float_labels_match_package(seed):
    rng = np.random.default_rng(100 + seed)
    data = random_reliability_data(rng, 4, 60, 4, 0.3)
    oracle = krippendorff.alpha(to_nan(data), level_of_measurement="nominal")
    words = {1: "helpful", 2: "harmless", 3: "honest", 4: "off-topic"}
    labelled = [[None if v is None else words[v] for v in row] for row in data]
    as_floats = [[math.nan if v is None else v + 0.5 for v in row] for row in data]
    assert krippendorff_alpha(labelled) == pytest.approx(oracle, abs=1e-12)
    assert krippendorff_alpha(as_floats, "nominal") == pytest.approx(oracle, abs=1e-12)


def test_alpha_non_integer_interval_values_match_package():
    rng = np.random.default_rng(7)
    data = rng.normal(3.0, 1.0, size=(3, 40)).round(2).astype(object)
    data[rng.random((3, 40)) < 0.2] = None
    data = data.tolist()
    for level in ("interval", "ordinal"):
        oracle = krippendorff.alpha(to_nan(data), level_of_measurement=level)
        assert krippendorff_alpha(data, level) == pytest.approx(oracle, abs=1e-10)


def test_alpha_large_input_matches_package():
    # Not a timing test: only checks the vectorised path on a larger input.
    rng = np.random.default_rng(11)
    data = random_reliability_data(rng, 5, 20_000, 5, 0.1)
    oracle = krippendorff.alpha(to_nan(data), level_of_measurement="interval")
    assert krippendorff_alpha(data, "interval") == pytest.approx(oracle, abs=1e-10)


def test_alpha_ignores_units_with_single_value():
    base = [[1, 2, 3, 3], [1, 2, 2, 3]]
    padded = [row + extra for row, extra in zip(base, [[5, None], [None, None]], strict=True)]
    for level in LEVELS:
        assert krippendorff_alpha(padded, level) == pytest.approx(krippendorff_alpha(base, level))
    assert krippendorff_alpha_result(padded).n_pairable_units == 4


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_identical_raters_is_one(level):
    row = [1, 2, 3, 4, 2, None, 5]
    assert krippendorff_alpha([row, row, row], level) == 1.0


def test_alpha_undefined_cases_have_reasons():
    one_value = krippendorff_alpha_result([[2, 2, 2], [2, 2, None]], "interval")
    assert one_value.value is None
    assert one_value.reason == "only one category used: expected disagreement is 0"
    assert one_value.n_pairable_units == 2

    one_rater = krippendorff_alpha_result([[1, 2, 3]])
    assert one_rater.value is None and "one rater" in one_rater.reason

    no_overlap = krippendorff_alpha_result([[1, None, 2, None], [None, 2, None, 1]])
    assert no_overlap.value is None
    assert no_overlap.reason == "no unit has two or more ratings"
    assert (no_overlap.n_units, no_overlap.n_pairable_units, no_overlap.n_values) == (4, 0, 0)

    assert krippendorff_alpha_result([]).reason == "no units given"
    assert krippendorff_alpha_result([[], []]).reason == "no units given"
    assert krippendorff_alpha([[None, None], [None, None]]) is None


def test_alpha_input_validation():
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, 2], [1, 2]], "cardinal")
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, 2, 3], [1, 2]])
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, -2], [1, 2]], "ratio")
    with pytest.raises(ValueError):
        krippendorff_alpha([["a", "b"], ["a", "b"]], "interval")
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, math.inf], [1, 2]], "interval")


# ---------------------------------------------------------------------------
# Fleiss' kappa, Gwet's AC1, percent agreement
# ---------------------------------------------------------------------------


def test_fleiss_1971_published_value():
    value = fleiss_kappa(FLEISS_1971)
    assert round(value, 3) == 0.430
    table, _ = inter_rater.aggregate_raters(np.array(FLEISS_1971))
    assert value == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_matches_statsmodels_on_complete_data(seed):
    rng = np.random.default_rng(seed)
    n_units, n_raters = int(rng.integers(5, 60)), int(rng.integers(2, 9))
    labels = rng.integers(0, int(rng.integers(2, 6)), size=(n_units, n_raters))
    table, _ = inter_rater.aggregate_raters(labels)
    oracle = inter_rater.fleiss_kappa(table, method="fleiss")
    assert fleiss_kappa(labels.tolist()) == pytest.approx(oracle, abs=1e-12)


def test_gwet_handbook_four_raters_example():
    # Gwet's four-raters example (Krippendorff's data C as units x raters, with missing
    # ratings), reported with Gwet's irrCAC: AC1 = 0.77544 (p_a 0.81818, p_e 0.19032) and
    # Fleiss' kappa = 0.76117 (p_e 0.23872).
    units = transpose(EXAMPLE_C)
    assert gwet_ac1(units) == pytest.approx(0.77544, abs=5e-6)
    assert fleiss_kappa(units) == pytest.approx(0.76117, abs=5e-6)
    result = gwet_ac1_result(units)
    assert (result.n_units, result.n_pairable_units, result.n_values) == (12, 11, 41)


# Hand example, units x raters:
#   u1: a a a      -> r=3, agreeing ordered pairs 3*2 = 6 of 3*2 = 6 -> unit p_a 1
#   u2: a a b      -> 2*1 + 1*0 = 2 of 6                            -> unit p_a 1/3
#   u3: b b -      -> 2 of 2                                        -> unit p_a 1
#   u4: a - -      -> a single rating: no pairs (counts only towards pi)
# Percent agreement (pooled pairs) = (6 + 2 + 2) / (6 + 6 + 2) = 10/14 = 5/7.
# p_a (mean over pairable units) = (1 + 1/3 + 1) / 3 = 7/9.
# pi_a = (3/3 + 2/3 + 0/2 + 1/1) / 4 = 2/3, pi_b = (0 + 1/3 + 2/2 + 0) / 4 = 1/3.
# AC1: p_e = (2/3 * 1/3 + 1/3 * 2/3) / (q - 1 = 1) = 4/9; AC1 = (7/9 - 4/9) / (5/9) = 3/5.
# Fleiss: p_e = 4/9 + 1/9 = 5/9; kappa = (7/9 - 5/9) / (4/9) = 1/2.
HAND_UNITS = [["a", "a", "a"], ["a", "a", "b"], ["b", "b", None], ["a", None, None]]


def test_hand_example_percent_agreement_ac1_fleiss():
    assert percent_agreement(HAND_UNITS) == pytest.approx(5 / 7)
    assert gwet_ac1(HAND_UNITS) == pytest.approx(3 / 5)
    assert fleiss_kappa(HAND_UNITS) == pytest.approx(1 / 2)
    result = percent_agreement_result(HAND_UNITS)
    assert (result.n_units, result.n_pairable_units, result.n_values) == (4, 3, 8)


def test_ac1_with_declared_categories():
    # With q = 3 declared categories: p_e = (2/9 + 2/9 + 0) / 2 = 2/9,
    # AC1 = (7/9 - 2/9) / (7/9) = 5/7.
    assert gwet_ac1(HAND_UNITS, categories=["a", "b", "c"]) == pytest.approx(5 / 7)
    with pytest.raises(ValueError):
        gwet_ac1(HAND_UNITS, categories=["a"])


def test_units_by_raters_rows_may_differ_in_length():
    ragged = [["a", "a", "a"], ["a", "a", "b"], ["b", "b"], ["a"]]
    assert fleiss_kappa(ragged) == pytest.approx(fleiss_kappa(HAND_UNITS))
    assert gwet_ac1(ragged) == pytest.approx(gwet_ac1(HAND_UNITS))


def test_categorical_undefined_cases():
    same = [["x", "x"], ["x", "x", None]]
    for func in (fleiss_kappa_result, gwet_ac1_result):
        result = func(same)
        assert result.value is None and "only one category" in result.reason
    # Percent agreement stays defined, and AC1 with a declared second category too.
    assert percent_agreement(same) == 1.0
    assert gwet_ac1(same, categories=["x", "y"]) == 1.0

    one_rater = [["x"], ["y"], [None]]
    for func in (fleiss_kappa_result, gwet_ac1_result, percent_agreement_result):
        result = func(one_rater)
        assert result.value is None and "one rater" in result.reason

    no_overlap = [["x", None], [None, "y"]]
    for func in (fleiss_kappa_result, gwet_ac1_result, percent_agreement_result):
        result = func(no_overlap)
        assert result.value is None
        assert result.reason == "no unit has two or more ratings"

    for func in (fleiss_kappa_result, gwet_ac1_result, percent_agreement_result):
        assert func([]) == MetricResult(None, "no units given", 0, 0, 0)


def test_categorical_identical_raters():
    units = [["a", "a"], ["b", "b"], ["c", "c", None]]
    assert fleiss_kappa(units) == 1.0
    assert gwet_ac1(units) == 1.0
    assert percent_agreement(units) == 1.0


# ---------------------------------------------------------------------------
# Cohen's kappa
# ---------------------------------------------------------------------------


def test_cohen_hand_example():
    # Confusion (a rows, b columns) over labels 1, 2, 3: [[1, 1, 0], [0, 2, 0], [0, 0, 1]].
    # p_o = 4/5; marginals a = (2, 2, 1)/5, b = (1, 3, 1)/5; p_e = (2 + 6 + 1)/25 = 9/25.
    # kappa = (20/25 - 9/25) / (16/25) = 11/16.
    # Linear: observed disagreement 1/5 (one pair one step apart); expected
    # sum |i-j| p_i q_j = .24 + .16 + .08 + .08 + .08 + .12 = .76; kappa = 1 - .2/.76 = 14/19.
    a = [1, 1, 2, 2, 3, None, 2]
    b = [1, 2, 2, 2, 3, 1, None]
    assert cohen_kappa(a, b) == pytest.approx(11 / 16)
    assert cohen_kappa(a, b, "linear") == pytest.approx(14 / 19)
    result = cohen_kappa_result(a, b)
    assert (result.n_units, result.n_pairable_units, result.n_values) == (7, 5, 10)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", range(5))
def test_cohen_matches_sklearn(weights, seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(5, 200)), int(rng.integers(2, 7))
    a = rng.integers(0, k, size=n)
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, size=n))
    oracle = sklearn_metrics.cohen_kappa_score(a, b, weights=weights)
    assert cohen_kappa(a.tolist(), b.tolist(), weights) == pytest.approx(oracle, abs=1e-12)
    labels = list(range(k + 2))  # unused categories shift weighted distances
    oracle = sklearn_metrics.cohen_kappa_score(a, b, weights=weights, labels=labels)
    assert cohen_kappa(a.tolist(), b.tolist(), weights, labels) == pytest.approx(oracle, abs=1e-12)


def test_cohen_label_order_and_errors():
    a = ["bad", "ok", "good", "ok"]
    b = ["bad", "good", "good", "ok"]
    order = ["bad", "ok", "good"]
    as_ints = [order.index(x) for x in a], [order.index(x) for x in b]
    assert cohen_kappa(a, b, "quadratic", order) == pytest.approx(
        cohen_kappa(*as_ints, "quadratic")
    )
    with pytest.raises(ValueError):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError):
        cohen_kappa([1, 2], [1, 2], weights="cubic")
    with pytest.raises(ValueError):
        cohen_kappa([1, 2], [1, 3], labels=[1, 2])
    with pytest.raises(ValueError):
        cohen_kappa([1, "x"], [1, "x"], weights="linear")


def test_cohen_undefined_cases():
    single = cohen_kappa_result(["x", "x", None], ["x", "x", "y"])
    assert single.value is None and "only one category" in single.reason
    disjoint = cohen_kappa_result([1, None], [None, 2])
    assert disjoint.value is None and disjoint.n_pairable_units == 0
    assert cohen_kappa_result([], []).reason == "no units given"
    # Two raters who never agree are defined (kappa <= 0), not undefined.
    assert cohen_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)


# ---------------------------------------------------------------------------
# Pairwise preferences
# ---------------------------------------------------------------------------


def test_pairwise_agreement_mt_bench_convention():
    items = [
        ["A", "A", "B"],  # 3 pairs, 1 agreeing
        ["tie", "A"],  # 1 pair, 0 agreeing; without ties: one vote left, no pair
        ["B", "B", "tie"],  # 3 pairs, 1 agreeing; without ties: 1 pair, 1 agreeing
        ["A"],  # no pair
        [None, "x", "B", "B"],  # invalid votes ignored: 1 pair, 1 agreeing
    ]
    # With ties: (1 + 0 + 1 + 1) / (3 + 1 + 3 + 1) = 3/8. Without: (1 + 1 + 1) / (3 + 1 + 1) = 3/5.
    assert pairwise_agreement(items) == pytest.approx(3 / 8)
    assert pairwise_agreement(items, ties="without") == pytest.approx(3 / 5)
    result = pairwise_agreement_result(items, ties="without")
    assert (result.n_units, result.n_pairable_units, result.n_values) == (5, 3, 7)
    assert pairwise_agreement([["tie", "tie"]]) == 1.0


def test_pairwise_agreement_undefined_and_errors():
    result = pairwise_agreement_result([["A"], ["tie", "B"]], ties="without")
    assert result.value is None and result.reason == "no item has two or more usable votes"
    assert pairwise_agreement([]) is None
    with pytest.raises(ValueError):
        pairwise_agreement([["A", "B"]], ties="maybe")


# ---------------------------------------------------------------------------
# Bootstrap intervals
# ---------------------------------------------------------------------------


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    point = fleiss_kappa(FLEISS_1971)
    low, high = bootstrap_ci(fleiss_kappa, FLEISS_1971, n_boot=300, seed=3)
    assert low < point < high
    assert bootstrap_ci(fleiss_kappa, FLEISS_1971, n_boot=300, seed=3) == (low, high)
    assert bootstrap_ci(fleiss_kappa, FLEISS_1971, n_boot=300, seed=4) != (low, high)
    narrow = bootstrap_ci(fleiss_kappa, FLEISS_1971, n_boot=300, confidence=0.5, seed=3)
    assert low < narrow[0] < narrow[1] < high


def test_bootstrap_ci_drops_undefined_resamples():
    # One pairable unit among 30 single-rating units: a resample contains it with probability
    # 1 - (30/31)^31, about 0.64, so about a third of the resamples are undefined and dropped.
    units = [["a", "b"]] + [["a"]] * 30
    assert bootstrap_ci(percent_agreement, units, n_boot=200) == (0.0, 0.0)
    assert bootstrap_ci(percent_agreement, units, n_boot=200, min_valid_fraction=0.9) == (
        None,
        None,
    )
    assert bootstrap_ci(percent_agreement, [["a"], ["b"]], n_boot=50) == (None, None)
    assert bootstrap_ci(percent_agreement, [], n_boot=10) == (None, None)
    with pytest.raises(ValueError):
        bootstrap_ci(percent_agreement, units, n_boot=0)
    with pytest.raises(ValueError):
        bootstrap_ci(percent_agreement, units, confidence=1.0)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("seed", [0, 5])
def test_alpha_ci_fast_path_matches_rerunning_alpha(level, seed):
    rng = np.random.default_rng(seed)
    data = random_reliability_data(rng, 4, 40, 5, 0.3)
    data[2][0] = data[3][0] = data[1][0] = None  # unit 0 now has a single value
    data[0][1] = data[1][1] = None  # unit 1 may be empty or single
    # The resamples bootstrap_ci draws for this seed, given explicitly to the fast path.
    resamples = np.concatenate(list(resample_index_blocks(len(data[0]), 150, seed)))
    fast = krippendorff_alpha_ci(data, level, resamples=resamples)

    def slow_statistic(units):
        return krippendorff_alpha(transpose(units), level)

    slow = bootstrap_ci(slow_statistic, transpose(data), n_boot=150, seed=seed)
    assert fast[0] == pytest.approx(slow[0], abs=1e-9)
    assert fast[1] == pytest.approx(slow[1], abs=1e-9)
    point = krippendorff_alpha(data, level)
    assert fast[0] <= point <= fast[1]


@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_alpha_ci_pattern_draws_match_unit_draws_in_distribution(level):
    """Drawing pattern multiplicities is the same bootstrap as drawing units: with many
    resamples both intervals agree to within their Monte Carlo error."""
    rng = np.random.default_rng(11)
    data = random_reliability_data(rng, 5, 300, 5, 0.1)
    drawn = krippendorff_alpha_ci(data, level, n_boot=4000, seed=2)
    resamples = np.concatenate(list(resample_index_blocks(300, 4000, 3)))
    by_unit = krippendorff_alpha_ci(data, level, resamples=resamples)
    width = by_unit[1] - by_unit[0]
    assert drawn[0] == pytest.approx(by_unit[0], abs=0.05 * width)
    assert drawn[1] == pytest.approx(by_unit[1], abs=0.05 * width)
    # and a different seed gives a different (but equally valid) interval
    assert krippendorff_alpha_ci(data, level, n_boot=4000, seed=4) != drawn


def test_pattern_multiplicities_resample_all_units():
    sizes = np.array([5, 0, 20, 75])
    w = pattern_multiplicities(sizes, 20000, seed=1)
    assert w.shape == (20000, 4)
    assert (w.sum(axis=1) == 100).all()
    assert (w[:, 1] == 0).all()
    # Multinomial(100, sizes / 100): mean n_p, variance n_p (1 - n_p / 100)
    assert w.mean(axis=0) == pytest.approx(sizes, abs=0.1)
    assert w[:, 3].var() == pytest.approx(75 * 0.25, rel=0.05)
    assert (pattern_multiplicities(sizes, 5, seed=1) == w[:5]).all()


def test_alpha_ci_example_c_and_undefined():
    low, high = krippendorff_alpha_ci(EXAMPLE_C, "interval", n_boot=500, seed=1)
    assert low < 0.849 < high <= 1.0
    assert krippendorff_alpha_ci(EXAMPLE_C, "interval", n_boot=500, seed=1) == (low, high)
    assert krippendorff_alpha_ci([[1, 1], [1, 1]], "nominal", n_boot=50) == (None, None)
    assert krippendorff_alpha_ci([[1, 2]], "nominal", n_boot=50) == (None, None)


# ---------------------------------------------------------------------------
# Per-rater quality
# ---------------------------------------------------------------------------


def test_loo_nominal_majority_with_ties():
    ratings = [  # units x raters r0, r1, r2
        ["a", "a", "b"],  # r0: others a,b tie -> a is a mode: agree; r1 agree; r2: others a,a
        ["a", "b", None],  # r0: other b -> disagree; r1: other a -> disagree
        ["c", None, None],  # nobody else rated: skipped
        ["b", "b", "b"],  # everyone agrees
    ]
    residuals = loo_residuals(ratings)
    assert residuals == [
        [(0, 0.0), (1, 1.0), (3, 0.0)],
        [(0, 0.0), (1, 1.0), (3, 0.0)],
        [(0, 1.0), (3, 0.0)],
    ]
    assert loo_consensus_agreement(ratings) == [pytest.approx(2 / 3), pytest.approx(2 / 3), 0.5]


def test_loo_interval_residuals_and_agreement():
    ratings = [[1, 2, 3], [5, 5, None], [4, None, None]]
    # Unit 0: r0 vs mean(2, 3) = 2.5 -> -1.5; r1 vs 2 -> 0; r2 vs 1.5 -> +1.5.
    # Unit 1: r0 vs 5 -> 0; r1 vs 5 -> 0. Unit 2 is skipped.
    assert loo_residuals(ratings, "interval") == [
        [(0, -1.5), (1, 0.0)],
        [(0, 0.0), (1, 0.0)],
        [(0, 1.5)],
    ]
    # Observed range 5 - 1 = 4: r0 = 1 - mean(1.5, 0) / 4 = 0.8125; r2 = 1 - 1.5 / 4.
    assert loo_consensus_agreement(ratings, "interval") == [0.8125, 1.0, 0.625]
    # On a declared 1..9 scale (range 8) the same deviations weigh half as much.
    assert loo_consensus_agreement(ratings, "interval", scale_range=(1, 9))[0] == 0.90625
    with pytest.raises(ValueError):
        loo_consensus_agreement(ratings, "interval", scale_range=(2, 9))


def test_loo_undefined():
    assert loo_consensus_agreement([[1, None], [2, None]], "interval") == [None, None]
    assert loo_consensus_agreement([[3, 3], [3, 3]], "interval") == [None, None]
    assert loo_consensus_agreement([["a"], ["b"]]) == [None]
    assert loo_residuals([], "ordinal") == []


def test_position_bias():
    result = position_bias(60, 100)
    assert result["share"] == 0.6 and result["n"] == 100
    assert result["p_value"] == pytest.approx(stats.binomtest(60, 100, 0.5).pvalue)
    assert position_bias(5, 10)["p_value"] == pytest.approx(1.0)
    assert position_bias(0, 0) == {"share": None, "n": 0, "p_value": None}
    with pytest.raises(ValueError):
        position_bias(11, 10)


def test_straight_lining_share():
    rows = [[4, 4, 4], [4, 5, None], [3], [None, 2, 2], [None, None], [1, 1.0]]
    # Eligible (>= 2 scores): rows 0, 1, 3, 5; identical: rows 0, 3, 5 -> 3/4.
    assert straight_lining_share(rows) == 0.75
    assert straight_lining_share([[1], [None, 2]]) is None
    assert straight_lining_share([]) is None


def test_distribution_divergence():
    rater, team = [30, 10, 0, 5], [100, 80, 0, 20]
    result = distribution_divergence(rater, team)
    assert result["js_distance"] == pytest.approx(jensenshannon(rater, team, base=2))
    expected = stats.chi2_contingency(np.array([[30, 10, 5], [100, 80, 20]]))
    assert result["chi2"] == pytest.approx(expected.statistic)
    assert result["p_value"] == pytest.approx(expected.pvalue)
    assert result["dof"] == 2 and (result["n_a"], result["n_b"]) == (45, 200)

    by_label = distribution_divergence({"good": 30, "bad": 10}, {"bad": 80, "good": 100})
    assert by_label["js_distance"] == pytest.approx(jensenshannon([30, 10], [100, 80], base=2))

    assert distribution_divergence([5, 0], [3, 0])["p_value"] is None
    assert distribution_divergence([5, 0], [5, 0])["js_distance"] == 0.0
    assert distribution_divergence([1, 0], [0, 1])["js_distance"] == pytest.approx(1.0)
    assert distribution_divergence([0, 0], [1, 2])["js_distance"] is None
    with pytest.raises(ValueError):
        distribution_divergence([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        distribution_divergence([1, -2], [1, 2])


def test_metric_result_is_frozen():
    result = krippendorff_alpha_result(EXAMPLE_C)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("level", LEVELS)
def test_numeric_arrays_give_the_same_results_as_lists(level):
    """The 2-D array fast path of the input handling (NaN for missing) changes nothing."""
    rng = np.random.default_rng(21)
    data = random_reliability_data(rng, 4, 50, 5, 0.3)
    matrix = np.array([[np.nan if v is None else v for v in row] for row in data])
    assert krippendorff_alpha_result(matrix, level) == krippendorff_alpha_result(data, level)
    assert krippendorff_alpha_ci(matrix, level, n_boot=200) == krippendorff_alpha_ci(
        data, level, n_boot=200
    )
    units = transpose(data)
    for fn in (fleiss_kappa_result, gwet_ac1_result, percent_agreement_result):
        assert fn(matrix.T) == fn(units)
    with pytest.raises(ValueError, match="finite"):
        krippendorff_alpha(np.array([[1.0, np.inf], [1.0, 2.0]]), level)
