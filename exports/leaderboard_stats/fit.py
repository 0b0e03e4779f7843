"""The Bradley-Terry fit by L-BFGS on aggregated counts."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

from exports.leaderboard_stats.common import (
    GRAD_ACCEPT,
    LBFGS_OPTIONS,
    LN10,
    STATUS_INSUFFICIENT,
    STATUS_OK,
    single_blas_thread,
)
from exports.leaderboard_stats.counts import PairCounts, outcome_counts


def comparison_components(counts: PairCounts, n: np.ndarray | None = None) -> list[np.ndarray]:
    """Connected components (index arrays) of the graph of pairs with at least one battle."""
    m = counts.n_models
    if n is None:
        n = counts.n
    met = n > 0
    graph = coo_matrix(
        (np.ones(int(met.sum())), (counts.i[met], counts.j[met])), shape=(m, m)
    ).tocsr()
    n_comp, labels = connected_components(graph, directed=False)
    comps = [np.flatnonzero(labels == c) for c in range(n_comp)]
    comps.sort(key=lambda c: (-c.size, int(c[0])))
    return comps


@dataclass
class _Fit:
    theta: np.ndarray  # natural-log strengths, mean zero
    b: float  # position-bias logit
    nll: float  # unpenalised negative log-likelihood
    converged: bool
    iterations: int
    x: np.ndarray  # optimiser vector, for warm starts


def fit_counts(
    counts: PairCounts,
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    ties: np.ndarray,
    *,
    ridge: float,
    fit_b: bool,
    x0: np.ndarray | None = None,
) -> _Fit:
    """Penalised BT maximum likelihood on cell counts with L-BFGS-B.

    Parameters ``x = (theta_1 .. theta_{m-1}[, b])`` with ``theta_0 = 0``; the ridge acts on
    the centred strengths (shift invariant) and on ``b``.
    """
    m = counts.n_models
    i, j = counts.i, counts.j
    side = counts.side.astype(np.float64)
    w = wins_i + 0.5 * ties
    lo = wins_j + 0.5 * ties
    tot = w + lo
    norm = max(float(tot.sum()), 1.0)
    n_par = m - 1 + (1 if fit_b else 0)

    def unpack(x: np.ndarray) -> tuple[np.ndarray, float]:
        theta = np.empty(m)
        theta[0] = 0.0
        theta[1:] = x[: m - 1]
        return theta, (float(x[m - 1]) if fit_b else 0.0)

    def nll_of(z: np.ndarray) -> float:
        return float(np.dot(w, np.logaddexp(0.0, -z)) + np.dot(lo, np.logaddexp(0.0, z)))

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta, b = unpack(x)
        z = theta[i] - theta[j] + side * b
        c = theta - theta.mean()
        value = nll_of(z) + ridge * (float(c @ c) + b * b)
        g_z = tot * expit(z) - w
        g_theta = np.bincount(i, g_z, minlength=m) - np.bincount(j, g_z, minlength=m)
        g_theta += 2.0 * ridge * c
        grad = np.empty(n_par)
        grad[: m - 1] = g_theta[1:]
        if fit_b:
            grad[m - 1] = float(g_z @ side) + 2.0 * ridge * b
        return value / norm, grad / norm

    if x0 is None or x0.shape != (n_par,):
        x0 = np.zeros(n_par)
    if n_par == 0:
        x = np.zeros(0)
        converged, nit = True, 0
    else:
        res = minimize(fun, x0, jac=True, method="L-BFGS-B", options=LBFGS_OPTIONS)
        x = res.x
        # A line search that cannot improve in floating point still counts as converged
        # when the (per-battle) gradient is negligible.
        converged = bool(res.success) or float(np.max(np.abs(res.jac))) <= GRAD_ACCEPT
        nit = int(res.nit)
    theta, b = unpack(x)
    z = theta[i] - theta[j] + side * b
    return _Fit(
        theta=theta - theta.mean(),
        b=b,
        nll=nll_of(z),
        converged=converged,
        iterations=nit,
        x=x,
    )


@dataclass(frozen=True)
class BTResult:
    """Bradley–Terry leaderboard.

    ``status`` is ``"ok"`` or ``"insufficient data"``. With ``"ok"``, ``ratings[k]`` is the
    Elo-scale rating of ``models[k]`` (finite, mean exactly ``base``),
    ``position_bias_elo`` the left-position advantage in Elo points (0 when not fitted)
    and ``position_bias_left_win_prob`` the implied probability that the left response
    wins between two equally strong models. ``log_likelihood`` is the natural-log
    likelihood of the data at the estimate without the ridge term, with each tie counted
    as half a win and half a loss. With ``"insufficient data"`` the numeric fields are
    ``None`` and ``components`` lists the disconnected groups of models (largest first).
    """

    status: str
    models: tuple[Hashable, ...]
    ratings: np.ndarray | None
    position_bias_elo: float | None
    position_bias_left_win_prob: float | None
    log_likelihood: float | None
    n_battles: int
    n_cells: int
    components: tuple[tuple[Hashable, ...], ...]
    position_bias_fitted: bool = False
    converged: bool = False
    iterations: int = 0
    scale: float = 400.0
    base: float = 1000.0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def ratings_dict(self) -> dict[Hashable, float]:
        """``{model: rating}``; empty when the status is not ``"ok"``."""
        if self.ratings is None:
            return {}
        return {m: float(r) for m, r in zip(self.models, self.ratings, strict=True)}

    def leaderboard(self) -> list[tuple[Hashable, float]]:
        """``(model, rating)`` pairs, best first (ties broken by model order)."""
        items = list(self.ratings_dict().items())
        return sorted(items, key=lambda kv: -kv[1])

    def win_probability(self, model_a: Hashable, model_b: Hashable) -> float:
        """P(model_a beats model_b) with unknown position (ties counted as half)."""
        r = self.ratings_dict()
        return float(expit((r[model_a] - r[model_b]) * LN10 / self.scale))


def _check_params(scale: float, ridge: float) -> None:
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be a positive finite number")
    if not (ridge > 0 and math.isfinite(ridge)):
        raise ValueError("ridge must be a positive finite number (it keeps ratings finite)")


def _insufficient(
    counts: PairCounts, comps: list[np.ndarray], scale: float, base: float, why: str
) -> BTResult:
    groups = tuple(tuple(counts.models[k] for k in c) for c in comps)
    return BTResult(
        status=STATUS_INSUFFICIENT,
        models=counts.models,
        ratings=None,
        position_bias_elo=None,
        position_bias_left_win_prob=None,
        log_likelihood=None,
        n_battles=counts.n_battles,
        n_cells=counts.n_cells,
        components=groups,
        scale=scale,
        base=base,
        message=why,
    )


def bradley_terry(
    counts: PairCounts | Iterable[Sequence[Any]],
    *,
    scale: float = 400.0,
    base: float = 1000.0,
    ridge: float = 1e-6,
    position_bias: bool = True,
) -> BTResult:
    """Fit a Bradley–Terry model with an optional left-position bias.

    For a cell of pair ``(i, j)`` the probability that ``i`` wins is
    ``sigmoid((r_i - r_j) * ln(10) / scale + s * b)`` where ``s`` is ``+1`` if ``i`` was shown
    left, ``-1`` if ``j`` was, ``0`` if unknown. Ties count as half a win for each side.
    The penalised log-likelihood (ridge ``ridge * (sum_k c_k**2 + b**2)`` on the centred
    natural-scale strengths ``c`` and on ``b``) is maximised with L-BFGS-B and an analytic
    gradient, anchoring the first model at 0, and the ratings are then shifted so their
    mean is ``base``.

    Guarantees: the work per iteration is proportional to the number of cells, not the
    number of battles; ratings are finite for any connected data (even for unbeaten
    models); the result does not depend on battle order. ``b`` is fitted only when
    ``position_bias`` is true and some battle has a known side; otherwise it is 0.

    If the comparison graph (an edge for every pair that met) is not connected, or there
    are fewer than two models, the result has status ``"insufficient data"`` and lists the
    components instead of ratings.
    """
    _check_params(scale, ridge)
    counts = outcome_counts(counts)
    comps = comparison_components(counts)
    if counts.n_models < 2:
        return _insufficient(counts, comps, scale, base, "fewer than two models")
    if len(comps) > 1:
        listing = "; ".join("[" + ", ".join(str(counts.models[k]) for k in c) + "]" for c in comps)
        why = f"comparison graph has {len(comps)} components: {listing}"
        return _insufficient(counts, comps, scale, base, why)

    fit_b = bool(position_bias) and bool(np.any(counts.side != 0))
    with single_blas_thread():
        fit = fit_counts(
            counts, counts.wins_i, counts.wins_j, counts.ties, ridge=ridge, fit_b=fit_b
        )
    return _result_from_fit(counts, fit, fit_b, scale, base, comps)


def _result_from_fit(
    counts: PairCounts,
    fit: _Fit,
    fit_b: bool,
    scale: float,
    base: float,
    comps: list[np.ndarray],
) -> BTResult:
    to_elo = scale / LN10
    return BTResult(
        status=STATUS_OK,
        models=counts.models,
        ratings=base + fit.theta * to_elo,
        position_bias_elo=float(fit.b * to_elo),
        position_bias_left_win_prob=float(expit(fit.b)),
        log_likelihood=-fit.nll,
        n_battles=counts.n_battles,
        n_cells=counts.n_cells,
        components=tuple(tuple(counts.models[k] for k in c) for c in comps),
        position_bias_fitted=fit_b,
        converged=fit.converged,
        iterations=fit.iterations,
        scale=scale,
        base=base,
        message="" if fit.converged else "optimiser did not report convergence",
    )
