"""Long-format helpers against the plain-list metrics they must agree with."""

import numpy as np
import pytest

from ratings.metrics import cohen_kappa, krippendorff_alpha, loo_consensus_agreement
from ratings.metrics.long import (
    cohen_kappa_pairs,
    loo_interval_agreement,
    loo_nominal_agreement,
    units_by_slot,
)


def random_long(seed, n_units=300, n_raters=6, k=3, n_cat=4):
    rng = np.random.default_rng(seed)
    units, raters, labels = [], [], []
    for u in range(n_units):
        truth = rng.integers(n_cat)
        for r in rng.choice(n_raters, size=k, replace=False):
            units.append(u)
            raters.append(r)
            labels.append(truth if rng.random() < 0.7 else rng.integers(n_cat))
    return np.array(units), np.array(raters), np.array(labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_units_by_slot_gives_the_same_alpha_as_raters_by_units(seed):
    units, raters, labels = random_long(seed)
    dense = [[None] * 300 for _ in range(6)]
    for u, r, v in zip(units, raters, labels, strict=True):
        dense[r][u] = int(v)
    slots = units_by_slot(units, labels)
    by_slot = [[None if np.isnan(x) else x for x in row] for row in slots.T.tolist()]
    for level in ("nominal", "interval"):
        assert krippendorff_alpha(by_slot, level) == pytest.approx(
            krippendorff_alpha(dense, level), abs=1e-12
        )


@pytest.mark.parametrize("seed", [0, 1])
def test_loo_nominal_matches_the_plain_function(seed):
    units, raters, labels = random_long(seed)
    per_unit = [[None] * 6 for _ in range(300)]
    for u, r, v in zip(units, raters, labels, strict=True):
        per_unit[u][r] = int(v)
    expected = loo_consensus_agreement(per_unit, "nominal")
    got = loo_nominal_agreement(units, labels)
    for r in range(6):
        mine = got[raters == r]
        assert np.nanmean(mine) == pytest.approx(expected[r], abs=1e-12)


def test_loo_interval_by_hand():
    # unit 0: 1, 3, 5 -> for the 1: others' mean 4, |1-4|/4 = .75 -> .25
    got = loo_interval_agreement(np.array([0, 0, 0, 1]), np.array([1.0, 3.0, 5.0, 2.0]), 4.0)
    assert got[:3].tolist() == [0.25, 1.0, 0.25] and np.isnan(got[3])


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_pairs_match_cohen_kappa(weights):
    units, raters, labels = random_long(3, n_units=400, n_raters=4, k=3)
    got = {
        (a, b): (n, k)
        for a, b, n, k in cohen_kappa_pairs(
            units, raters, labels, n_categories=4, weights=weights, min_shared=10
        )
    }
    assert got
    for (a, b), (n, kappa) in got.items():
        ua = dict(zip(units[raters == a], labels[raters == a], strict=True))
        ub = dict(zip(units[raters == b], labels[raters == b], strict=True))
        shared = sorted(set(ua) & set(ub))
        assert n == len(shared)
        expected = cohen_kappa(
            [int(ua[s]) for s in shared],
            [int(ub[s]) for s in shared],
            weights=weights,
            labels=[0, 1, 2, 3],
        )
        assert kappa == pytest.approx(expected, abs=1e-9)
