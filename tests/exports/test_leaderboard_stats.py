"""Tests for the Bradley–Terry leaderboard statistics."""

from __future__ import annotations

import math

import choix  # the test-only oracle (pyproject's test extras): a missing one fails
import numpy as np
import pytest

from exports.leaderboard_stats import (
    STATUS_INSUFFICIENT,
    STATUS_OK,
    bootstrap,
    bradley_terry,
    ci_rank,
    outcome_counts,
    win_tie_loss_matrix,
)
from exports.leaderboard_stats import fit as fit_module

LN10 = math.log(10)


def simulate(
    n_models: int = 8,
    n_battles: int = 3000,
    *,
    seed: int = 0,
    spread_elo: float = 150.0,
    left_bias_elo: float = 0.0,
    with_side: bool = False,
    tie_rate: float = 0.0,
) -> tuple[list[str], np.ndarray, list[tuple], list[tuple[int, int]]]:
    """Random battles from a BT model; also returns choix-style (winner, loser) pairs."""
    rng = np.random.default_rng(seed)
    names = [f"m{k:02d}" for k in range(n_models)]
    true = rng.normal(0.0, spread_elo, n_models)
    battles: list[tuple] = []
    pairs: list[tuple[int, int]] = []
    for _ in range(n_battles):
        a, b = rng.choice(n_models, 2, replace=False)
        left_is_a = bool(rng.random() < 0.5) if with_side else None
        s = 0.0 if left_is_a is None else (1.0 if left_is_a else -1.0)
        z = (true[a] - true[b]) * LN10 / 400 + s * left_bias_elo * LN10 / 400
        if rng.random() < tie_rate:
            outcome = "tie"
        elif rng.random() < 1 / (1 + math.exp(-z)):
            outcome = "A"
            pairs.append((int(a), int(b)))
        else:
            outcome = "B"
            pairs.append((int(b), int(a)))
        if with_side:
            battles.append((names[a], names[b], outcome, left_is_a))
        else:
            battles.append((names[a], names[b], outcome))
    return names, true, battles, pairs


# ---------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------


def test_outcome_counts_canonical_cells() -> None:
    battles = [
        ("b", "a", "A", True),  # b (=j) shown left and won
        ("a", "b", "B", False),  # b shown left and won: same cell and outcome
        ("a", "b", "tie", None),
        ("a", "b", "a", True),  # case-insensitive outcome, a shown left
    ]
    c = outcome_counts(battles)
    assert c.models == ("a", "b")
    assert c.n_cells == 3
    assert c.n_battles == 4
    cells = {
        int(s): (wi, wj, t) for s, wi, wj, t in zip(c.side, c.wins_i, c.wins_j, c.ties, strict=True)
    }
    assert cells == {-1: (0, 2, 0), 0: (0, 0, 1), 1: (1, 0, 0)}
    assert np.all(c.i == 0)
    assert np.all(c.j == 1)


def test_outcome_counts_order_invariant() -> None:
    _, _, battles, _ = simulate(n_battles=500, with_side=True, tie_rate=0.2, seed=4)
    c1 = outcome_counts(battles)
    c2 = outcome_counts(list(reversed(battles)))
    for name in ("i", "j", "side", "wins_i", "wins_j", "ties"):
        np.testing.assert_array_equal(getattr(c1, name), getattr(c2, name))


@pytest.mark.parametrize(
    "bad",
    [[("a", "a", "A")], [("a", "b", "draw")], [("a", "b")], [("a", "b", "A", True, 1)]],
)
def test_outcome_counts_rejects_bad_battles(bad: list[tuple]) -> None:
    with pytest.raises(ValueError):
        outcome_counts(bad)


def test_win_tie_loss_matrix() -> None:
    battles = [
        ("x", "y", "A"),
        ("x", "y", "A"),
        ("y", "x", "A", True),
        ("x", "z", "tie"),
        ("z", "y", "B"),
    ]
    wtl = win_tie_loss_matrix(battles)
    assert wtl.models == ("x", "y", "z")
    np.testing.assert_array_equal(wtl.wins, [[0, 2, 0], [1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(wtl.ties, [[0, 0, 1], [0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(wtl.losses, wtl.wins.T)
    d = wtl.as_dict()
    assert d[("x", "y")] == {"wins": 2, "ties": 0, "losses": 1}
    assert d[("z", "x")] == {"wins": 0, "ties": 1, "losses": 0}
    assert ("x", "x") not in d


# ---------------------------------------------------------------------------
# Bradley–Terry fit
# ---------------------------------------------------------------------------


def test_known_case_two_wins_two_ties() -> None:
    res = bradley_terry([("A", "B", "A")] * 2 + [("A", "B", "tie")] * 2)
    assert res.status == STATUS_OK
    r = res.ratings_dict()
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(3), abs=0.1)
    assert (r["A"] + r["B"]) / 2 == pytest.approx(1000.0, abs=1e-9)
    # Ties count as half a win: 3 effective wins, 1 effective loss.
    assert res.log_likelihood == pytest.approx(3 * math.log(0.75) + math.log(0.25), abs=1e-6)
    assert res.win_probability("A", "B") == pytest.approx(0.75, abs=1e-4)
    assert not res.position_bias_fitted
    assert res.position_bias_elo == 0.0
    assert res.position_bias_left_win_prob == 0.5
    assert res.n_battles == 4


def test_scale_and_base() -> None:
    battles = [("A", "B", "A")] * 3 + [("A", "B", "B")]
    res = bradley_terry(battles, scale=173.7178, base=1500)
    r = res.ratings_dict()
    assert (r["A"] + r["B"]) / 2 == pytest.approx(1500)
    assert r["A"] - r["B"] == pytest.approx(173.7178 * math.log10(3), abs=0.05)


def test_only_ties_gives_equal_ratings() -> None:
    res = bradley_terry([("A", "B", "tie")] * 5)
    np.testing.assert_allclose(res.ratings, [1000.0, 1000.0], atol=1e-6)


def test_matches_choix_oracle() -> None:
    names, _, battles, pairs = simulate(n_models=8, n_battles=3000, seed=3)
    res = bradley_terry(battles)
    assert res.ok and res.converged
    assert res.models == tuple(names)
    params = choix.opt_pairwise(len(names), pairs, alpha=1e-6, method="Newton-CG", tol=1e-10)
    theirs = params * 400 / LN10
    ours = res.ratings
    shift = np.mean(ours - theirs)
    np.testing.assert_allclose(ours, theirs + shift, atol=1e-3)


def test_matches_choix_ilsr_with_unbalanced_design() -> None:
    names, _, battles, pairs = simulate(n_models=5, n_battles=400, seed=11, spread_elo=300)
    res = bradley_terry(battles, position_bias=False)
    params = choix.ilsr_pairwise(len(names), pairs, alpha=1e-6, tol=1e-12, max_iter=1000)
    theirs = params * 400 / LN10
    np.testing.assert_allclose(res.ratings - res.ratings.mean(), theirs - theirs.mean(), atol=0.01)


def test_disconnected_graph_is_insufficient_data() -> None:
    battles = [("a", "b", "A"), ("b", "c", "tie"), ("x", "y", "B"), ("y", "x", "A")]
    res = bradley_terry(battles)
    assert res.status == STATUS_INSUFFICIENT
    assert not res.ok
    assert res.ratings is None
    assert res.ratings_dict() == {}
    assert res.components == (("a", "b", "c"), ("x", "y"))
    assert "2 components" in res.message
    boot = bootstrap(battles, n_boot=10)
    assert boot.status == STATUS_INSUFFICIENT
    assert boot.lower is None and boot.table() == []


def test_empty_input_is_insufficient_data() -> None:
    res = bradley_terry([])
    assert res.status == STATUS_INSUFFICIENT
    assert res.n_battles == 0


def test_unbeaten_model_has_finite_rating() -> None:
    battles = [("champ", "b", "A")] * 5 + [("c", "champ", "B")] * 3 + [("b", "c", "A")] * 2
    battles += [("b", "c", "B")]
    res = bradley_terry(battles)
    assert res.ok
    assert np.all(np.isfinite(res.ratings))
    board = res.leaderboard()
    assert board[0][0] == "champ"
    assert board[0][1] > board[1][1] + 400  # far ahead, but finite
    assert res.ratings.mean() == pytest.approx(1000.0)


def test_left_position_bias_is_recovered() -> None:
    _, true, battles, _ = simulate(
        n_models=6, n_battles=20_000, seed=7, left_bias_elo=60.0, with_side=True
    )
    res = bradley_terry(battles)
    assert res.position_bias_fitted
    assert res.position_bias_elo == pytest.approx(60.0, abs=15.0)
    assert res.position_bias_left_win_prob > 0.55
    expected = 1 / (1 + 10 ** (-res.position_bias_elo / 400))
    assert res.position_bias_left_win_prob == pytest.approx(expected)
    centred = res.ratings - res.ratings.mean()
    np.testing.assert_allclose(centred, true - true.mean(), atol=25.0)

    # A right-side advantage has the opposite sign.
    flipped = [(a, b, o, not left) for a, b, o, left in battles]
    assert bradley_terry(flipped).position_bias_elo == pytest.approx(
        -res.position_bias_elo, abs=1e-3
    )
    # Switched off, the bias is not fitted.
    off = bradley_terry(battles, position_bias=False)
    assert not off.position_bias_fitted
    assert off.position_bias_elo == 0.0


def test_position_bias_near_zero_without_bias() -> None:
    _, _, battles, _ = simulate(n_models=6, n_battles=20_000, seed=8, with_side=True)
    res = bradley_terry(battles)
    assert abs(res.position_bias_elo) < 15.0


def test_invalid_parameters() -> None:
    battles = [("A", "B", "A"), ("A", "B", "B")]
    with pytest.raises(ValueError):
        bradley_terry(battles, ridge=0)
    with pytest.raises(ValueError):
        bradley_terry(battles, scale=-1)
    with pytest.raises(ValueError):
        bootstrap(battles, n_boot=0)
    with pytest.raises(ValueError):
        bootstrap(battles, confidence=1.0)


def test_cost_depends_on_cells_not_battles(monkeypatch: pytest.MonkeyPatch) -> None:
    battles = [
        ("A", "B", "A", True),
        ("A", "B", "B", False),
        ("B", "C", "tie", None),
        ("C", "A", "A", True),
        ("A", "C", "A", None),
        ("B", "C", "B", True),
        ("C", "B", "A", False),
        ("A", "B", "tie", True),
        ("B", "A", "A", None),
        ("C", "A", "B", False),
    ]
    small = outcome_counts(battles)
    large = outcome_counts(battles * 1000)
    assert large.n_battles == 1000 * small.n_battles
    assert large.n_cells == small.n_cells
    for name in ("i", "j", "side"):
        np.testing.assert_array_equal(getattr(small, name), getattr(large, name))
    np.testing.assert_array_equal(large.wins_i, 1000 * small.wins_i)

    # Every array the likelihood touches has one entry per cell.
    sizes: list[int] = []
    real_expit = fit_module.expit

    def spy(z: np.ndarray) -> np.ndarray:
        sizes.append(int(np.size(z)))
        return real_expit(z)

    monkeypatch.setattr(fit_module, "expit", spy)  # the fit's own name for it
    fit_small = bradley_terry(small)
    small_sizes = set(sizes[:-1])  # the last call converts the bias to a probability
    sizes.clear()
    fit_large = bradley_terry(battles * 1000)
    large_sizes = set(sizes[:-1])
    assert small_sizes == large_sizes == {small.n_cells}
    # Same proportions, so the same estimate (up to the relative weight of the tiny ridge).
    np.testing.assert_allclose(fit_small.ratings, fit_large.ratings, atol=0.05)


# ---------------------------------------------------------------------------
# Bootstrap and CI rank
# ---------------------------------------------------------------------------


def test_ci_rank_hand_case() -> None:
    lower = [10.0, 5.0, 0.0, -20.0]
    upper = [20.0, 15.0, 8.0, -10.0]
    # model 0: nobody's lower bound above 20 -> 1
    # model 1: nobody's lower bound above 15 -> 1 (overlaps model 0)
    # model 2: model 0's lower bound 10 > 8 -> 2
    # model 3: 10, 5, 0 all > -10 -> 4
    np.testing.assert_array_equal(ci_rank(lower, upper), [1, 1, 2, 4])


def test_bootstrap_contains_estimate_and_is_deterministic() -> None:
    names, _, battles, _ = simulate(n_models=6, n_battles=3000, seed=5, with_side=True)
    b1 = bootstrap(battles, n_boot=200, seed=42)
    b2 = bootstrap(battles, n_boot=200, seed=42)
    assert b1.ok
    assert b1.n_used == 200
    assert b1.models == tuple(names)
    np.testing.assert_array_equal(b1.lower, b2.lower)
    np.testing.assert_array_equal(b1.upper, b2.upper)
    np.testing.assert_array_equal(b1.rank, b2.rank)
    assert np.all(b1.lower <= b1.ratings)
    assert np.all(b1.ratings <= b1.upper)
    assert np.all(np.isfinite(b1.lower)) and np.all(np.isfinite(b1.upper))
    np.testing.assert_array_equal(b1.rank, ci_rank(b1.lower, b1.upper))
    assert b1.rank.min() == 1
    lo, hi = b1.position_bias_ci
    assert lo <= b1.position_bias_elo <= hi
    # The point estimate is the plain fit.
    np.testing.assert_allclose(b1.ratings, bradley_terry(battles).ratings)
    # Another seed gives other draws.
    b3 = bootstrap(battles, n_boot=200, seed=43)
    assert not np.array_equal(b1.lower, b3.lower)
    # Rows are ordered by rank.
    table = b1.table()
    assert [row["rank"] for row in table] == sorted(row["rank"] for row in table)


def test_bootstrap_ci_width_shrinks_with_data() -> None:
    _, _, battles, _ = simulate(n_models=4, n_battles=400, seed=9)
    narrow = bootstrap(outcome_counts(battles * 25), n_boot=100, seed=1)
    wide = bootstrap(battles, n_boot=100, seed=1)
    assert np.all((narrow.upper - narrow.lower) < (wide.upper - wide.lower))


def test_bootstrap_separates_clearly_different_models() -> None:
    battles = [("strong", "weak", "A")] * 90 + [("strong", "weak", "B")] * 10
    battles += [("mid", "weak", "A")] * 50 + [("mid", "weak", "B")] * 50
    battles += [("strong", "mid", "A")] * 85 + [("strong", "mid", "B")] * 15
    boot = bootstrap(battles, n_boot=300, seed=0)
    ranks = dict(zip(boot.models, boot.rank.tolist(), strict=True))
    assert ranks["strong"] == 1
    assert ranks["mid"] >= 2
    assert ranks["weak"] >= 2
