"""Dawid-Skene: raters' confusion matrices and item labels by EM."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np


def _encode(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Integer codes in order of first appearance, and the distinct values."""
    arr = values if isinstance(values, np.ndarray) else None
    if arr is None and len(values) and isinstance(values[0], int | np.integer):
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError):
            arr = None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "iub":
        uniq, first, inv = np.unique(arr, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        return rank[inv.reshape(-1)], [v.item() for v in uniq[order]]
    index: dict[Any, int] = {}
    seq = arr.tolist() if isinstance(values, np.ndarray) else values
    codes = np.fromiter((index.setdefault(v, len(index)) for v in seq), np.int64, len(seq))
    return codes, list(index)


def _sorted_perm(values: list[Any]) -> list[int]:
    try:
        return sorted(range(len(values)), key=lambda k: values[k])
    except TypeError:
        return list(range(len(values)))


@dataclass(frozen=True)
class DawidSkeneResult:
    """Dawid–Skene estimate.

    Rows of ``posterior`` (``n_items x K``, each summing to 1) follow ``items`` (order of
    first appearance in the votes); columns follow ``classes``. ``labels`` is the MAP
    class per item (lowest class index on exact ties). ``confusion[r, k, l]`` is the
    estimated probability that rater ``raters[r]`` answers ``classes[l]`` when the truth is
    ``classes[k]`` (rows sum to 1). ``rater_accuracy[r] = sum_k priors[k] *
    confusion[r, k, k]`` is the rater's expected probability of giving the true label.
    ``log_likelihood[t]`` is the marginal log-likelihood of the votes after M-step ``t``;
    ``log_posterior[t]`` adds the Dirichlet smoothing prior and never decreases.
    """

    items: list[Hashable]
    raters: list[Hashable]
    classes: list[Hashable]
    posterior: np.ndarray
    labels: np.ndarray
    priors: np.ndarray
    confusion: np.ndarray
    rater_accuracy: np.ndarray
    rater_n_votes: np.ndarray
    log_likelihood: list[float]
    log_posterior: list[float]
    iterations: int
    converged: bool

    @cached_property
    def item_index(self) -> dict[Hashable, int]:
        """``{item: row}``."""
        return {item: k for k, item in enumerate(self.items)}

    def label_of(self, item: Hashable) -> Hashable:
        """MAP label of one item."""
        return self.classes[int(np.argmax(self.posterior[self.item_index[item]]))]

    def posterior_of(self, item: Hashable) -> dict[Hashable, float]:
        """``{class: probability}`` for one item."""
        row = self.posterior[self.item_index[item]]
        return {c: float(p) for c, p in zip(self.classes, row, strict=True)}

    def labels_dict(self) -> dict[Hashable, Hashable]:
        """``{item: MAP label}``."""
        idx = np.argmax(self.posterior, axis=1) if self.posterior.size else np.zeros(0, int)
        return {item: self.classes[k] for item, k in zip(self.items, idx.tolist(), strict=True)}

    def rater_summary(self) -> dict[Hashable, dict[str, float]]:
        """``{rater: {"accuracy": .., "n_votes": ..}}``."""
        return {
            r: {"accuracy": float(a), "n_votes": float(n)}
            for r, a, n in zip(self.raters, self.rater_accuracy, self.rater_n_votes, strict=True)
        }


def _split_votes(
    votes: Sequence[Sequence[Any]] | np.ndarray,
) -> tuple[Any, Any, Any]:
    if isinstance(votes, np.ndarray):
        if votes.ndim != 2 or votes.shape[1] != 3:
            raise ValueError("a vote array must have shape (n_votes, 3)")
        return votes[:, 0], votes[:, 1], votes[:, 2]
    votes = votes if isinstance(votes, list | tuple) else list(votes)
    bad = next((v for v in votes if len(v) != 3), None)
    if bad is not None:
        raise ValueError(f"each vote must be an (item, rater, label) triple, got {bad!r}")
    items = [v[0] for v in votes]
    raters = [v[1] for v in votes]
    labels = [v[2] for v in votes]
    return items, raters, labels


def dawid_skene(
    votes: Sequence[Sequence[Any]] | np.ndarray,
    *,
    n_classes: int | None = None,
    classes: Sequence[Hashable] | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
    weights: Sequence[float] | np.ndarray | None = None,
) -> DawidSkeneResult:
    """Dawid–Skene label aggregation by expectation–maximisation.

    ``votes`` is a sequence of ``(item, rater, label)`` triples (or an ``(n, 3)`` array).
    Classes are ``classes`` if given (every label must be one of them), else
    ``range(n_classes)`` if given (labels must be ints in that range), else the sorted
    distinct labels. ``weights`` optionally scales each vote's contribution.

    EM starts from the (weighted) majority-vote posteriors, then alternates an M-step
    (class priors and per-rater confusion matrices, each cell smoothed by adding
    ``smoothing`` pseudo-counts, i.e. a Dirichlet(1 + smoothing) MAP estimate) and an
    E-step (item posteriors). It stops when the smoothed log-posterior changes by at most
    ``tol * max(1, |value|)`` or after ``max_iter`` iterations. Every iteration is
    vectorised over votes (the only Python loops run over classes), so the cost per
    iteration is ``O(n_votes * K + n_raters * K**2)``.

    Guarantees: deterministic; posteriors are finite and sum to 1 (no NaN, also for a
    single vote or a single class); with ``smoothing > 0`` all confusion entries are
    positive.
    """
    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise ValueError("smoothing must be finite and >= 0")
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError("tol must be finite and >= 0")

    item_col, rater_col, label_col = _split_votes(votes)
    n_votes = len(item_col)
    it, items = _encode(item_col)
    rt, raters = _encode(rater_col)
    lb_raw, label_values = _encode(label_col)

    # Class encoding.
    if classes is not None:
        class_list = list(classes)
        if len(set(class_list)) != len(class_list):
            raise ValueError("classes must be distinct")
        pos = {c: k for k, c in enumerate(class_list)}
        missing = [v for v in label_values if v not in pos]
        if missing:
            raise ValueError(f"labels not in classes: {missing[:5]!r}")
        remap = np.array([pos[v] for v in label_values], dtype=np.int64)
    elif n_classes is not None:
        if n_classes < 1:
            raise ValueError("n_classes must be at least 1")
        class_list = list(range(n_classes))
        bad = [
            v
            for v in label_values
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 0 <= v < n_classes
        ]
        if bad:
            raise ValueError(f"labels must be ints in range({n_classes}), got {bad[:5]!r}")
        remap = np.array([int(v) for v in label_values], dtype=np.int64)
    else:
        perm = _sorted_perm(label_values)
        class_list = [label_values[k] for k in perm]
        remap = np.empty(len(perm), dtype=np.int64)
        remap[perm] = np.arange(len(perm))
    lb = remap[lb_raw] if n_votes else np.zeros(0, dtype=np.int64)

    n_k = len(class_list)
    n_items, n_raters = len(items), len(raters)

    if weights is None:
        w = np.ones(n_votes)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.size != n_votes:
            raise ValueError("weights must have one entry per vote")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and >= 0")

    classes_arr = _as_label_array(class_list)
    if n_votes == 0 or n_k == 0:
        k = len(class_list)
        return DawidSkeneResult(
            items=[],
            raters=[],
            classes=class_list,
            posterior=np.zeros((0, k)),
            labels=classes_arr[:0],
            priors=np.full(k, 1.0 / k) if k else np.zeros(0),
            confusion=np.zeros((0, k, k)),
            rater_accuracy=np.zeros(0),
            rater_n_votes=np.zeros(0),
            log_likelihood=[],
            log_posterior=[],
            iterations=0,
            converged=True,
        )

    K = n_k  # conventional name for the number of classes
    rl = rt * K + lb  # row of the (rater, answered label) table
    unweighted = bool(np.all(w == 1.0))

    # Posteriors are kept class-major (K x n_items): contiguous per-class rows make the
    # gathers (np.take) and bincounts below fast.
    # Initial posteriors: (weighted) majority vote shares; items with zero weight are uniform.
    init = np.bincount(it * K + lb, weights=w, minlength=n_items * K).reshape(n_items, K)
    post_t = np.ascontiguousarray(_normalise_rows(init).T)

    ll_trace: list[float] = []
    lp_trace: list[float] = []
    converged = False
    iterations = 0
    tiny = np.finfo(np.float64).tiny
    priors = np.full(K, 1.0 / K)
    confusion = np.full((n_raters, K, K), 1.0 / K)
    log_joint = np.empty((K, n_items))

    for iterations in range(1, max_iter + 1):  # noqa: B007 - value used after the loop
        # M-step: priors and confusion counts[r, k, l] = sum of P(item=k) over r's votes l.
        priors = (post_t.sum(axis=1) + smoothing) / (n_items + K * smoothing)
        per_vote = np.take(post_t, it, axis=1)  # (K, n_votes)
        if not unweighted:
            per_vote *= w
        counts = np.empty((n_raters, K, K))
        for k in range(K):
            counts[:, k, :] = np.bincount(rl, weights=per_vote[k], minlength=n_raters * K).reshape(
                n_raters, K
            )
        counts += smoothing
        confusion = _normalise_rows(counts.reshape(n_raters * K, K)).reshape(n_raters, K, K)

        # E-step: log P(item=k, votes) = log prior_k + sum over votes of log confusion.
        log_conf = np.log(np.maximum(confusion, tiny))
        log_prior = np.log(np.maximum(priors, tiny))
        table = np.ascontiguousarray(log_conf.transpose(1, 0, 2).reshape(K, n_raters * K))
        per_vote = np.take(table, rl, axis=1)  # (K, n_votes)
        if not unweighted:
            per_vote *= w
        for k in range(K):
            log_joint[k] = np.bincount(it, weights=per_vote[k], minlength=n_items)
            log_joint[k] += log_prior[k]
        top = log_joint.max(axis=0)
        post_t = np.exp(log_joint - top)
        total = post_t.sum(axis=0)
        post_t /= total

        ll = float((top + np.log(total)).sum())
        lp = ll + smoothing * (float(log_conf.sum()) + float(log_prior.sum()))
        ll_trace.append(ll)
        lp_trace.append(lp)
        if len(lp_trace) > 1 and abs(lp - lp_trace[-2]) <= tol * max(1.0, abs(lp_trace[-2])):
            converged = True
            break

    post = np.ascontiguousarray(post_t.T)
    idx = np.argmax(post, axis=1)
    diag = np.diagonal(confusion, axis1=1, axis2=2)  # (n_raters, K)
    return DawidSkeneResult(
        items=items,
        raters=raters,
        classes=class_list,
        posterior=post,
        labels=classes_arr[idx],
        priors=priors,
        confusion=confusion,
        rater_accuracy=diag @ priors,
        rater_n_votes=np.bincount(rt, weights=w, minlength=n_raters),
        log_likelihood=ll_trace,
        log_posterior=lp_trace,
        iterations=iterations,
        converged=converged,
    )


def _normalise_rows(a: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; all-zero rows become uniform."""
    s = a.sum(axis=1, keepdims=True)
    out = np.divide(a, s, out=np.full_like(a, 1.0 / a.shape[1]), where=s > 0)
    return out


def _as_label_array(class_list: list[Hashable]) -> np.ndarray:
    arr = np.empty(len(class_list), dtype=object)
    arr[:] = class_list
    try:
        typed = np.asarray(class_list)
    except (ValueError, TypeError):
        return arr
    if typed.ndim == 1 and typed.dtype != object and typed.tolist() == class_list:
        return typed
    return arr
