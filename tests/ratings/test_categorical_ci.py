"""The vectorised categorical bootstrap equals the generic one on the same resamples."""

import numpy as np
import pytest

from ratings.metrics import bootstrap_ci, fleiss_kappa, gwet_ac1, percent_agreement
from ratings.metrics.bootstrap import resample_index_blocks
from ratings.metrics.categorical_ci import categorical_cis


def random_rows(seed, n_units=60, n_raters=4, n_cat=3, missing=0.2):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_units):
        truth = int(rng.integers(n_cat))
        row = [truth if rng.random() < 0.7 else int(rng.integers(n_cat)) for _ in range(n_raters)]
        rows.append([None if rng.random() < missing else v for v in row])
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_intervals_equal_the_generic_bootstrap(seed):
    rows = random_rows(seed)
    # The resamples bootstrap_ci draws for this seed, given explicitly to the fast path.
    resamples = np.concatenate(list(resample_index_blocks(len(rows), 200, seed)))
    fast = categorical_cis(rows, resamples=resamples)
    for name, fn in (
        ("fleiss_kappa", fleiss_kappa),
        ("gwet_ac1", gwet_ac1),
        ("percent_agreement", percent_agreement),
    ):
        slow = bootstrap_ci(fn, rows, n_boot=200, seed=seed)
        assert fast[name] == pytest.approx(slow, abs=1e-9), name


def test_intervals_contain_the_estimate_and_none_when_undefined():
    rows = random_rows(5, n_units=200)
    cis = categorical_cis(rows, n_boot=300)
    assert cis["fleiss_kappa"][0] <= fleiss_kappa(rows) <= cis["fleiss_kappa"][1]
    single = [["x", "x"], ["x", None]]
    assert categorical_cis(single, n_boot=50)["fleiss_kappa"] == (None, None)
    assert categorical_cis([], n_boot=50)["percent_agreement"] == (None, None)


def test_pattern_draws_match_unit_draws_in_distribution():
    rows = random_rows(7, n_units=400)
    drawn = categorical_cis(rows, n_boot=4000, seed=1)
    by_unit = categorical_cis(
        rows, resamples=np.concatenate(list(resample_index_blocks(400, 4000, 2)))
    )
    for name in ("fleiss_kappa", "gwet_ac1", "percent_agreement"):
        width = by_unit[name][1] - by_unit[name][0]
        assert drawn[name] == pytest.approx(by_unit[name], abs=0.05 * width), name


def test_numpy_rows_with_nan_give_the_same_intervals_as_lists():
    rows = random_rows(3, n_units=100)
    matrix = np.array([[np.nan if v is None else v for v in row] for row in rows])
    assert categorical_cis(matrix, n_boot=300) == categorical_cis(rows, n_boot=300)
