"""The model leaderboard: battles, Bradley-Terry ratings with intervals, criterion means."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db.models import Avg, Count

from conversations.models import Project
from exports import leaderboard_stats as lbs
from exports.reports.common import NUMERIC_SCALES
from ratings.models import Criterion, Judgment, Score, TaskKind


@dataclass
class Battles:
    """Pairwise judgments as leaderboard battles, and what was left out and why."""

    battles: list[tuple[str, str, str, bool | None]] = field(default_factory=list)
    skipped_same_model: int = 0
    skipped_no_model: int = 0


def pairwise_battles(*, project: Project, include_external: bool = False) -> Battles:
    """Current pairwise judgments as ``(model_a, model_b, outcome, left_is_a)`` battles.

    The models are the ``Message.model`` of the item's response A and response B; outcome
    ``"A"`` for a negative preference, ``"B"`` for a positive one, ``"tie"`` for 0 and for
    every both-bad vote. Judgments on items whose two responses share a model, or where
    either has none, are skipped and counted. External judgments only with
    ``include_external``.
    """
    qs = Judgment.objects.filter(
        item__project=project,
        item__kind=TaskKind.PAIRWISE,
        is_current=True,
        preference__isnull=False,
    )
    if not include_external:
        qs = qs.filter(is_external=False)
    out = Battles()
    for model_a, model_b, preference, both_bad, left_is_a in qs.order_by("id").values_list(
        "item__response__model", "item__response_b__model", "preference", "both_bad", "left_is_a"
    ):
        if not model_a or not model_b:
            out.skipped_no_model += 1
            continue
        if model_a == model_b:
            out.skipped_same_model += 1
            continue
        outcome = "tie" if both_bad or preference == 0 else ("A" if preference < 0 else "B")
        out.battles.append((model_a, model_b, outcome, left_is_a))
    return out


def criterion_means(*, project: Project, include_external: bool = False) -> list[dict[str, Any]]:
    """Mean rubric score per criterion and model, from current scoring judgments.

    Only numeric scales count (Likert points; binary as 1 = yes, 0 = no, so the mean is the
    share of yes). The model is the scored response's ``Message.model``; responses without
    a model are left out. Rubric versions are pooled by criterion key and scale; the label
    is the newest version's. Rows are sorted by criterion position, then model.
    """
    qs = Score.objects.filter(
        judgment__item__project=project,
        judgment__item__kind=TaskKind.SCORE,
        judgment__is_current=True,
        value__isnull=False,
        criterion__scale__in=NUMERIC_SCALES,
    ).exclude(judgment__item__response__model="")
    if not include_external:
        qs = qs.filter(judgment__is_external=False)
    groups = (
        qs.values("criterion__key", "criterion__scale", "judgment__item__response__model")
        .annotate(mean=Avg("value"), n=Count("id"))
        .order_by()
    )
    meta: dict[tuple[str, str], dict] = {}
    for c in Criterion.objects.filter(rubric__project=project).order_by(
        "rubric__version", "position"
    ):
        meta[(c.key, c.scale)] = {"label": c.label, "points": c.points, "position": c.position}
    rows = []
    for g in groups:
        key = (g["criterion__key"], g["criterion__scale"])
        info = meta.get(key, {"label": key[0], "points": None, "position": 0})
        rows.append(
            {
                "criterion": key[0],
                "label": info["label"],
                "scale": key[1],
                "points": info["points"],
                "model": g["judgment__item__response__model"],
                "mean": float(g["mean"]),
                "n": g["n"],
                "_position": info["position"],
            }
        )
    rows.sort(key=lambda r: (r["_position"], r["criterion"], r["model"]))
    for r in rows:
        del r["_position"]
    return rows


BT_CACHE_SECONDS = 24 * 3600


def _bt_summary(
    counts: lbs.PairCounts, *, n_boot: int, seed: int, confidence: float
) -> dict[str, Any]:
    """Bootstrap the Bradley–Terry fit and keep what the report shows (plain, picklable).

    Cached under a digest of the aggregated counts and the parameters: the same data and
    parameters always give the same result (the bootstrap is seeded), so a hit is exact and
    any new or revised judgment changes the key.
    """
    digest = hashlib.sha256(
        repr(
            (
                [str(m) for m in counts.models],
                counts.i.tolist(),
                counts.j.tolist(),
                counts.side.tolist(),
                counts.wins_i.tolist(),
                counts.wins_j.tolist(),
                counts.ties.tolist(),
                n_boot,
                seed,
                confidence,
            )
        ).encode()
    ).hexdigest()

    def compute() -> dict[str, Any]:
        boot = lbs.bootstrap(counts, n_boot=n_boot, seed=seed, confidence=confidence)
        point = boot.point
        out: dict[str, Any] = {
            "status": boot.status,
            "message": point.message,
            "components": [[str(m) for m in c] for c in point.components],
            "n_used": boot.n_used,
            "table": [{**row, "model": str(row["model"])} for row in boot.table()],
            "bias": None,
        }
        if boot.ok:
            fitted = point.position_bias_fitted
            ci = boot.position_bias_ci
            out["bias"] = {
                "fitted": fitted,
                "elo": point.position_bias_elo if fitted else None,
                "low": ci[0] if ci else None,
                "high": ci[1] if ci else None,
                "left_win_prob": point.position_bias_left_win_prob if fitted else None,
            }
        elif point.ok:
            out["message"] = "every bootstrap replicate was disconnected: collect more battles"
        return out

    return cache.get_or_set(f"reports:bt:{digest}", compute, BT_CACHE_SECONDS)


@dataclass
class Leaderboard:
    """The model leaderboard of one project.

    ``rows`` has one entry per model (rated models by CI rank and rating, then models that
    only have rubric scores or could not be rated): ``model``, ``rating``, ``lower``,
    ``upper``, ``rank`` (None unless ``status == "ok"``), ``wins``, ``ties``, ``losses``,
    ``battles``. ``matrix`` holds the head-to-head ``wins``/``ties``/``losses`` tables
    (row model against column model) over ``matrix["models"]``. With ``"insufficient
    data"``, ``components`` lists the groups of models that never met each other.
    """

    status: str
    message: str
    rows: list[dict[str, Any]]
    matrix: dict[str, Any]
    components: list[list[str]]
    position_bias: dict[str, Any]
    criteria: list[dict[str, Any]]
    n_battles: int
    skipped_same_model: int
    skipped_no_model: int
    n_boot: int
    n_boot_used: int
    seed: int
    confidence: float
    include_external: bool


def leaderboard_report(
    *,
    project: Project,
    include_external: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Leaderboard:
    """Build the leaderboard: Bradley–Terry ratings (Elo scale, mean 1000) with percentile
    bootstrap intervals and CI-based ranks, the position-bias term, the win/tie/loss matrix
    and the per-criterion rubric means.

    Deterministic for a given ``seed``. Reads only; the statistics are those of
    :mod:`exports.leaderboard_stats` (see ``docs/leaderboard.md``). Raises ``ValueError``
    for ``n_boot < 1`` or a confidence outside (0, 1).
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    data = pairwise_battles(project=project, include_external=include_external)
    criteria = criterion_means(project=project, include_external=include_external)
    per_model: dict[str, dict[str, Any]] = {}
    matrix: dict[str, Any] = {"models": [], "wins": [], "ties": [], "losses": []}
    status, message, components = lbs.STATUS_INSUFFICIENT, "no pairwise battles yet", []
    bias: dict[str, Any] = {
        "fitted": False,
        "elo": None,
        "low": None,
        "high": None,
        "left_win_prob": None,
    }
    n_used = 0

    if data.battles:
        counts = lbs.outcome_counts(data.battles)
        wtl = lbs.win_tie_loss_matrix(counts)
        models = [str(m) for m in wtl.models]
        matrix = {
            "models": models,
            "wins": wtl.wins.tolist(),
            "ties": wtl.ties.tolist(),
            "losses": wtl.losses.tolist(),
        }
        for k, model in enumerate(models):
            per_model[model] = {
                "wins": int(wtl.wins[k].sum()),
                "ties": int(wtl.ties[k].sum()),
                "losses": int(wtl.losses[k].sum()),
                "battles": int(wtl.games[k].sum()),
            }
        fit = _bt_summary(counts, n_boot=n_boot, seed=seed, confidence=confidence)
        status, message, components = fit["status"], fit["message"], fit["components"]
        n_used = fit["n_used"]
        for row in fit["table"]:
            per_model[row["model"]].update(
                rating=row["rating"], lower=row["lower"], upper=row["upper"], rank=row["rank"]
            )
        bias = fit["bias"] or bias

    for r in criteria:
        per_model.setdefault(r["model"], {"wins": 0, "ties": 0, "losses": 0, "battles": 0})
    rows = [
        {
            "model": model,
            "rating": v.get("rating"),
            "lower": v.get("lower"),
            "upper": v.get("upper"),
            "rank": v.get("rank"),
            "wins": v["wins"],
            "ties": v["ties"],
            "losses": v["losses"],
            "battles": v["battles"],
        }
        for model, v in per_model.items()
    ]
    rows.sort(
        key=lambda r: (
            r["rank"] is None,
            r["rank"] or 0,
            -(r["rating"] if r["rating"] is not None else -math.inf),
            r["model"],
        )
    )
    return Leaderboard(
        status=status,
        message=message,
        rows=rows,
        matrix=matrix,
        components=components,
        position_bias=bias,
        criteria=criteria,
        n_battles=len(data.battles),
        skipped_same_model=data.skipped_same_model,
        skipped_no_model=data.skipped_no_model,
        n_boot=n_boot,
        n_boot_used=n_used,
        seed=seed,
        confidence=confidence,
        include_external=include_external,
    )


def leaderboard_csv_rows(board: Leaderboard) -> list[dict[str, Any]]:
    """One flat row per model: the leaderboard columns, then ``mean_<criterion>`` and
    ``n_<criterion>`` for every rubric criterion with numeric scores."""
    keys = list(dict.fromkeys(r["criterion"] for r in board.criteria))
    means = {(r["model"], r["criterion"]): r for r in board.criteria}
    out = []
    for row in board.rows:
        flat = dict(row)
        for key in keys:
            m = means.get((row["model"], key))
            flat[f"mean_{key}"] = m["mean"] if m else None
            flat[f"n_{key}"] = m["n"] if m else 0
        out.append(flat)
    return out


def criterion_table(board: Leaderboard) -> dict[str, Any]:
    """The rubric means as a criterion × model table for display:
    ``{"models": [...], "rows": [{"criterion", "label", "scale", "points", "cells": [...]}]}``
    with ``cells[k] = {"mean", "n"}`` (None where the model has no score)."""
    models = sorted({r["model"] for r in board.criteria})
    order = [m["model"] for m in board.rows if m["model"] in models]
    table: dict[str, dict] = {}
    for r in board.criteria:
        entry = table.setdefault(
            r["criterion"],
            {"criterion": r["criterion"], "label": r["label"], "scale": r["scale"]}
            | {"points": r["points"], "by_model": {}},
        )
        entry["by_model"][r["model"]] = {"mean": r["mean"], "n": r["n"]}
    rows = [
        {
            **{k: v for k, v in e.items() if k != "by_model"},
            "cells": [e["by_model"].get(m) for m in order],
        }
        for e in table.values()
    ]
    return {"models": order, "rows": rows}
