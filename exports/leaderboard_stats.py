"""Bradley–Terry leaderboard statistics for pairwise model comparisons.

Pure numerical code (numpy + scipy, no Django). A *battle* is one pairwise judgment::

    (model_a, model_b, outcome)               # position unknown
    (model_a, model_b, outcome, left_is_a)    # left_is_a: True, False or None

``outcome`` is ``"A"`` (model_a won), ``"B"`` (model_b won) or ``"tie"``.

Battles are first aggregated into *cells*: one cell per unordered model pair and display
side (model ``i`` shown left, model ``j`` shown left, or unknown), holding the counts of the
three outcomes. Every fit works on the cells only, so its cost depends on the number of
distinct (pair, outcome, side) combinations and not on the number of judgments.

See ``docs/leaderboard.md`` for the model, the formulas and the defaults.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

try:  # Optional: keeps BLAS single-threaded during the many tiny L-BFGS-B solves.
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    threadpool_limits = None

__all__ = [
    "STATUS_INSUFFICIENT",
    "STATUS_OK",
    "BTResult",
    "BootstrapResult",
    "PairCounts",
    "WinTieLoss",
    "bootstrap",
    "bradley_terry",
    "ci_rank",
    "outcome_counts",
    "win_tie_loss_matrix",
]

STATUS_OK = "ok"
STATUS_INSUFFICIENT = "insufficient data"

LN10 = math.log(10.0)

_OUTCOMES = {"a": "A", "b": "B", "tie": "tie"}

# L-BFGS-B settings. The objective is divided by the number of battles, so these
# tolerances are relative to the data size.
_LBFGS_OPTIONS = {"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20}
_GRAD_ACCEPT = 1e-7


@contextlib.contextmanager
def _single_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread if threadpoolctl is installed.

    The L-BFGS-B solver makes BLAS calls on vectors of a few dozen entries; a
    multi-threaded BLAS only adds synchronisation cost there (badly so on a busy machine).
    """
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# ---------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PairCounts:
    """Battles aggregated per unordered model pair and display side.

    Cell ``k`` describes pair ``(models[i[k]], models[j[k]])`` with ``i[k] < j[k]``:

    * ``side[k]`` is ``+1`` if model ``i`` was shown on the left, ``-1`` if model ``j``
      was, ``0`` if the position is unknown;
    * ``wins_i[k]``, ``wins_j[k]``, ``ties[k]`` are the outcome counts.

    Each ``(i, j, side)`` triple occurs at most once, cells are sorted by
    ``(i, j, side)`` and models are sorted, so the structure is deterministic for a given
    multiset of battles (the order of the battles does not matter).
    """

    models: tuple[Hashable, ...]
    i: np.ndarray
    j: np.ndarray
    side: np.ndarray
    wins_i: np.ndarray
    wins_j: np.ndarray
    ties: np.ndarray

    @property
    def n(self) -> np.ndarray:
        """Number of battles per cell."""
        return self.wins_i + self.wins_j + self.ties

    @property
    def n_cells(self) -> int:
        """Number of distinct (pair, side) cells; each carries three outcome counts."""
        return int(self.i.size)

    @property
    def n_battles(self) -> int:
        """Total number of battles."""
        return int(round(float(self.n.sum())))

    @property
    def n_models(self) -> int:
        return len(self.models)

    def with_counts(self, wins_i: np.ndarray, wins_j: np.ndarray, ties: np.ndarray) -> PairCounts:
        """Same cells with other outcome counts (used for resampling)."""
        return PairCounts(self.models, self.i, self.j, self.side, wins_i, wins_j, ties)


def _sorted_names(names: Iterable[Hashable]) -> tuple[Hashable, ...]:
    names = list(names)
    try:
        return tuple(sorted(names))
    except TypeError:
        return tuple(sorted(names, key=repr))


def _normalise_outcome(outcome: Any) -> str:
    key = str(outcome).strip().lower()
    if key not in _OUTCOMES:
        raise ValueError(f"outcome must be 'A', 'B' or 'tie', got {outcome!r}")
    return _OUTCOMES[key]


def outcome_counts(battles: Iterable[Sequence[Any]] | PairCounts) -> PairCounts:
    """Aggregate battles into per-(pair, side) outcome counts.

    ``battles`` is an iterable of ``(model_a, model_b, outcome)`` or
    ``(model_a, model_b, outcome, left_is_a)``; a :class:`PairCounts` is returned as is.
    Outcomes are case-insensitive ``"A"``, ``"B"``, ``"tie"``; ``left_is_a`` is ``True``
    (model_a shown left), ``False`` (model_b shown left) or ``None`` (unknown).

    The input is read once; afterwards only distinct battles are processed.

    Raises ``ValueError`` for an unknown outcome, a model compared with itself, or a
    battle with fewer than 3 or more than 4 fields.
    """
    if isinstance(battles, PairCounts):
        return battles

    raw: Counter[tuple[Any, ...]] = Counter(tuple(b) for b in battles)

    # Normalise distinct battles only.
    norm: Counter[tuple[Hashable, Hashable, str, bool | None]] = Counter()
    for key, count in raw.items():
        if len(key) == 3:
            a, b, outcome = key
            left = None
        elif len(key) == 4:
            a, b, outcome, left = key
            left = None if left is None else bool(left)
        else:
            raise ValueError(f"a battle has 3 or 4 fields, got {key!r}")
        if a == b:
            raise ValueError(f"model {a!r} compared with itself")
        norm[(a, b, _normalise_outcome(outcome), left)] += count

    models = _sorted_names({m for key in norm for m in key[:2]})
    index = {m: k for k, m in enumerate(models)}

    cells: dict[tuple[int, int, int], list[int]] = {}
    for (a, b, outcome, left), count in norm.items():
        ia, ib = index[a], index[b]
        if ia < ib:
            i, j = ia, ib
            slot = {"A": 0, "B": 1, "tie": 2}[outcome]
            side = 0 if left is None else (1 if left else -1)
        else:
            i, j = ib, ia
            slot = {"A": 1, "B": 0, "tie": 2}[outcome]
            side = 0 if left is None else (-1 if left else 1)
        cells.setdefault((i, j, side), [0, 0, 0])[slot] += count

    keys = sorted(cells)
    arr = np.array([cells[k] for k in keys], dtype=np.float64).reshape(-1, 3)
    idx = np.array(keys, dtype=np.int64).reshape(-1, 3)
    return PairCounts(
        models=models,
        i=idx[:, 0].copy(),
        j=idx[:, 1].copy(),
        side=idx[:, 2].astype(np.int8),
        wins_i=arr[:, 0].copy(),
        wins_j=arr[:, 1].copy(),
        ties=arr[:, 2].copy(),
    )


@dataclass(frozen=True)
class WinTieLoss:
    """Head-to-head tables over ordered model pairs.

    ``wins[a, b]`` is how often ``models[a]`` beat ``models[b]``, ``ties[a, b]`` (symmetric)
    how often they tied and ``losses[a, b] == wins[b, a]``. Display side is ignored.
    """

    models: tuple[Hashable, ...]
    wins: np.ndarray
    ties: np.ndarray
    losses: np.ndarray

    @property
    def games(self) -> np.ndarray:
        """Number of battles per ordered pair (symmetric)."""
        return self.wins + self.ties + self.losses

    def as_dict(self) -> dict[tuple[Hashable, Hashable], dict[str, int]]:
        """``{(a, b): {"wins": .., "ties": .., "losses": ..}}`` for pairs that met."""
        out: dict[tuple[Hashable, Hashable], dict[str, int]] = {}
        games = self.games
        for a, b in zip(*np.nonzero(games), strict=True):
            out[(self.models[a], self.models[b])] = {
                "wins": int(self.wins[a, b]),
                "ties": int(self.ties[a, b]),
                "losses": int(self.losses[a, b]),
            }
        return out


def win_tie_loss_matrix(battles: Iterable[Sequence[Any]] | PairCounts) -> WinTieLoss:
    """Win/tie/loss counts per ordered model pair (see :class:`WinTieLoss`)."""
    counts = outcome_counts(battles)
    m = counts.n_models
    wins = np.zeros((m, m), dtype=np.int64)
    ties = np.zeros((m, m), dtype=np.int64)
    np.add.at(wins, (counts.i, counts.j), counts.wins_i.astype(np.int64))
    np.add.at(wins, (counts.j, counts.i), counts.wins_j.astype(np.int64))
    np.add.at(ties, (counts.i, counts.j), counts.ties.astype(np.int64))
    ties = ties + ties.T
    return WinTieLoss(models=counts.models, wins=wins, ties=ties, losses=wins.T.copy())


# ---------------------------------------------------------------------------
# Bradley–Terry fit
# ---------------------------------------------------------------------------


def _components(counts: PairCounts, n: np.ndarray | None = None) -> list[np.ndarray]:
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


def _fit(
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
        res = minimize(fun, x0, jac=True, method="L-BFGS-B", options=_LBFGS_OPTIONS)
        x = res.x
        # A line search that cannot improve in floating point still counts as converged
        # when the (per-battle) gradient is negligible.
        converged = bool(res.success) or float(np.max(np.abs(res.jac))) <= _GRAD_ACCEPT
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
    comps = _components(counts)
    if counts.n_models < 2:
        return _insufficient(counts, comps, scale, base, "fewer than two models")
    if len(comps) > 1:
        listing = "; ".join("[" + ", ".join(str(counts.models[k]) for k in c) + "]" for c in comps)
        why = f"comparison graph has {len(comps)} components: {listing}"
        return _insufficient(counts, comps, scale, base, why)

    fit_b = bool(position_bias) and bool(np.any(counts.side != 0))
    with _single_blas_thread():
        fit = _fit(counts, counts.wins_i, counts.wins_j, counts.ties, ridge=ridge, fit_b=fit_b)
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


# ---------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------


def ci_rank(lower: Sequence[float] | np.ndarray, upper: Sequence[float] | np.ndarray) -> np.ndarray:
    """Confidence-interval rank (Chatbot Arena convention).

    ``rank[k] = 1 + #{m : lower[m] > upper[k]}``: a model is only ranked below the models
    that are better than it with non-overlapping intervals. Ranks start at 1 and several
    models can share a rank.
    """
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if lo.shape != hi.shape or lo.ndim != 1:
        raise ValueError("lower and upper must be 1-D arrays of the same length")
    return 1 + (lo[None, :] > hi[:, None]).sum(axis=1)


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap confidence intervals for a Bradley–Terry leaderboard.

    ``ratings`` is the point estimate on all data; ``lower``/``upper`` are percentile
    bounds of the replicate ratings at level ``confidence``; ``rank`` is the CI-based rank
    (:func:`ci_rank`). ``samples`` holds the replicate ratings (``n_used`` x models).
    Replicates whose resampled comparison graph is disconnected are skipped and counted in
    ``n_boot - n_used``. With status ``"insufficient data"`` the arrays are ``None``.
    """

    status: str
    models: tuple[Hashable, ...]
    ratings: np.ndarray | None
    lower: np.ndarray | None
    upper: np.ndarray | None
    rank: np.ndarray | None
    position_bias_elo: float | None
    position_bias_ci: tuple[float, float] | None
    confidence: float
    n_boot: int
    n_used: int
    seed: int | None
    point: BTResult
    samples: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def table(self) -> list[dict[str, Any]]:
        """Rows ``{"model", "rating", "lower", "upper", "rank"}``, best rating first."""
        if self.ratings is None or self.lower is None or self.upper is None or self.rank is None:
            return []
        rows = [
            {
                "model": m,
                "rating": float(self.ratings[k]),
                "lower": float(self.lower[k]),
                "upper": float(self.upper[k]),
                "rank": int(self.rank[k]),
            }
            for k, m in enumerate(self.models)
        ]
        return sorted(rows, key=lambda row: (row["rank"], -row["rating"]))


def bootstrap(
    data: PairCounts | Iterable[Sequence[Any]],
    n_boot: int = 1000,
    seed: int | None = 0,
    confidence: float = 0.95,
    *,
    scale: float = 400.0,
    base: float = 1000.0,
    ridge: float = 1e-6,
    position_bias: bool = True,
) -> BootstrapResult:
    """Percentile bootstrap of :func:`bradley_terry` ratings.

    Each replicate resamples the ``N`` battles with replacement, done as one multinomial
    draw of ``N`` over the (pair, side, outcome) cells with the observed proportions, so
    the cost does not grow with ``N``. Each replicate is refitted (warm-started at the
    point estimate) and centred on ``base``, like the point estimate.

    Guarantees: the result is deterministic for a given ``seed`` (an ``int``); bounds are
    finite; ``lower <= upper``; ranks follow :func:`ci_rank`.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    counts = outcome_counts(data)
    point = bradley_terry(counts, scale=scale, base=base, ridge=ridge, position_bias=position_bias)

    def failed(status_point: BTResult, n_used: int = 0) -> BootstrapResult:
        return BootstrapResult(
            status=STATUS_INSUFFICIENT,
            models=counts.models,
            ratings=status_point.ratings,
            lower=None,
            upper=None,
            rank=None,
            position_bias_elo=status_point.position_bias_elo,
            position_bias_ci=None,
            confidence=confidence,
            n_boot=n_boot,
            n_used=n_used,
            seed=seed,
            point=status_point,
        )

    if not point.ok:
        return failed(point)

    fit_b = point.position_bias_fitted
    m = counts.n_models
    k = counts.n_cells
    observed = np.concatenate([counts.wins_i, counts.wins_j, counts.ties])
    total = int(round(observed.sum()))
    probs = observed / observed.sum()

    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, probs, size=n_boot).astype(np.float64)

    to_elo = scale / LN10
    x0 = np.zeros(m - 1 + (1 if fit_b else 0))
    x0[: m - 1] = (point.ratings[1:] - point.ratings[0]) / to_elo  # type: ignore[index]
    if fit_b:
        x0[m - 1] = (point.position_bias_elo or 0.0) / to_elo

    samples = np.empty((n_boot, m))
    biases = np.empty(n_boot)
    used = np.zeros(n_boot, dtype=bool)
    with _single_blas_thread():
        for r in range(n_boot):
            wi, wj, t = draws[r, :k], draws[r, k : 2 * k], draws[r, 2 * k :]
            if len(_components(counts, wi + wj + t)) > 1:
                continue
            fit = _fit(counts, wi, wj, t, ridge=ridge, fit_b=fit_b, x0=x0)
            samples[r] = base + fit.theta * to_elo
            biases[r] = fit.b * to_elo
            used[r] = True

    n_used = int(used.sum())
    if n_used == 0:
        return failed(point)
    samples = samples[used]
    biases = biases[used]
    alpha = 1.0 - confidence
    lower = np.quantile(samples, alpha / 2, axis=0)
    upper = np.quantile(samples, 1 - alpha / 2, axis=0)
    bias_ci = None
    if fit_b:
        bias_ci = (
            float(np.quantile(biases, alpha / 2)),
            float(np.quantile(biases, 1 - alpha / 2)),
        )
    return BootstrapResult(
        status=STATUS_OK,
        models=counts.models,
        ratings=point.ratings,
        lower=lower,
        upper=upper,
        rank=ci_rank(lower, upper),
        position_bias_elo=point.position_bias_elo,
        position_bias_ci=bias_ci,
        confidence=confidence,
        n_boot=n_boot,
        n_used=n_used,
        seed=seed,
        point=point,
        samples=samples,
    )
