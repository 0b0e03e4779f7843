"""Agreement per task kind and criterion, with bootstrap intervals, as snapshot rows."""

import hashlib
from functools import partial

import numpy as np
import pandas as pd

from conversations.models import Project
from ratings.consensus.kb import VERDICTS as KB_VERDICTS
from ratings.metrics import (
    fleiss_kappa_result,
    gwet_ac1_result,
    krippendorff_alpha_ci,
    krippendorff_alpha_result,
    pairwise_agreement_result,
    percent_agreement_result,
)
from ratings.metrics.categorical_ci import categorical_cis
from ratings.metrics.long import (
    units_by_slot,
)
from ratings.models import (
    Scale,
    TaskKind,
)
from ratings.quality_data import Fingerprint, QualityData, preference_label

VERDICT_ORDER = list(KB_VERDICTS)  # the votes: cannot_judge abstains (ratings/consensus/kb.py)


def data_version(project: Project) -> str:
    """A digest of the project's current judgments (count, sum and maximum of their ids): it
    changes with every new or edited judgment."""
    fp = Fingerprint.of_project(project)
    return hashlib.sha256(f"{fp.n}:{fp.id_sum}:{fp.last}".encode()).hexdigest()[:32]


def _internal(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of internal (not imported) judgments: the frame itself when all are, which
    spares a copy of every column in the common case."""
    internal = frame["is_external"] == 0
    return frame if internal.all() else frame[internal]


def _snapshot(kind, criterion, metric, result, ci=(None, None), now=None) -> dict:
    return {
        "kind": kind,
        "criterion": criterion,
        "metric": metric,
        "value": result.value,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "n_units": result.n_units,
        "n_pairable_units": result.n_pairable_units,
        "n_values": result.n_values,
        "reason": (result.reason or "")[:255],
        "computed_at": now,
    }


def _ci(rows: np.ndarray, level: str, n_boot: int) -> tuple[float | None, float | None]:
    if n_boot <= 0:
        return None, None
    return krippendorff_alpha_ci(rows.T, level, n_boot=n_boot, seed=0)


def _agreement_block(
    kind: str,
    criterion: str,
    units,
    values,
    levels,
    categorical: bool,
    n_boot: int,
    now,
    categories: list | None = None,
) -> list[dict]:
    """Alpha at each level (with a bootstrap interval), and the categorical statistics; AC1
    counts ``categories`` (the scale's values) when given, else the observed ones."""
    rows = units_by_slot(units, values)
    out = []
    for level in levels:
        result = krippendorff_alpha_result(rows.T, level)
        ci = _ci(rows, level, n_boot) if result.value is not None else (None, None)
        out.append(_snapshot(kind, criterion, f"alpha_{level}", result, ci, now))
    if categorical:
        scale = _categories(rows, categories)
        cis = categorical_cis(rows, n_boot=n_boot, seed=0, categories=scale) if n_boot > 0 else {}
        for metric, compute in (
            ("fleiss_kappa", fleiss_kappa_result),
            ("gwet_ac1", partial(gwet_ac1_result, categories=scale)),
            ("percent_agreement", percent_agreement_result),
        ):
            result = compute(rows)
            ci = cis.get(metric, (None, None)) if result.value is not None else (None, None)
            out.append(_snapshot(kind, criterion, metric, result, ci, now))
    return out


def _categories(rows: np.ndarray, categories: list | None) -> list | None:
    """The scale's values when every rating lies on it, else None (AC1 then counts the
    observed categories)."""
    if categories is None:
        return None
    used = rows[~np.isnan(rows)]
    return categories if np.isin(used, categories).all() else None


def _scale_values(crit) -> list[float] | None:
    """Every value a criterion's scores can take, for AC1's number of categories."""
    if crit is None:
        return None
    if crit.scale == Scale.LIKERT:
        return [float(p) for p in range(1, (crit.points or 5) + 1)]
    if crit.scale == Scale.BINARY:
        return [0.0, 1.0]
    if crit.scale == Scale.SINGLE_CHOICE and crit.options:
        return [float(i) for i in range(len(crit.options))]
    return None


def _levels_for(scale: str) -> tuple[tuple[str, ...], bool]:
    if scale == Scale.LIKERT:
        return ("ordinal", "interval"), True
    if scale in (Scale.BINARY, Scale.SINGLE_CHOICE):
        return ("nominal",), True
    return (), False


def compute_agreements(data: QualityData, *, n_boot: int, now) -> list[dict]:
    j, s = data.judgments, data.scores
    out: list[dict] = []
    internal = _internal(j)
    internal_scores = _internal(s)
    # rubric scoring, per criterion
    score_rows = internal_scores[internal_scores["kind"] == TaskKind.SCORE]
    for key, group in score_rows.groupby("criterion_key", sort=True):
        crit = data.criteria.get(key)
        levels, categorical = _levels_for(crit.scale if crit else Scale.LIKERT)
        if levels:
            out += _agreement_block(
                TaskKind.SCORE,
                key,
                group["item_id"].to_numpy(),
                group["value"].to_numpy(),
                levels,
                categorical,
                n_boot,
                now,
                _scale_values(crit),
            )
    # pairwise: the overall preference, MT-Bench agreement, per-criterion preferences
    pw = internal[internal["kind"] == TaskKind.PAIRWISE]
    if len(pw):
        items, pref = pw["item_id"].to_numpy(), pw["preference"].to_numpy()
        out += _agreement_block(
            TaskKind.PAIRWISE, "", items, pref, ("ordinal", "interval"), False, n_boot, now
        )
        out += _agreement_block(
            TaskKind.PAIRWISE,
            "winner",
            items,
            preference_label(pref),
            ("nominal",),
            True,
            n_boot,
            now,
            [-1.0, 0.0, 1.0],
        )
        votes = (
            pd.Series(np.array(["A", "tie", "B"])[preference_label(pref) + 1])
            .groupby(items)
            .agg(list)
        )
        for ties in ("with", "without"):
            out.append(
                _snapshot(
                    TaskKind.PAIRWISE,
                    "",
                    f"pairwise_agreement_{ties}_ties",
                    pairwise_agreement_result(votes.tolist(), ties=ties),
                    now=now,
                )
            )
        per_crit = internal_scores[internal_scores["kind"] == TaskKind.PAIRWISE]
        for key, group in per_crit.groupby("criterion_key", sort=True):
            out += _agreement_block(
                TaskKind.PAIRWISE,
                key,
                group["item_id"].to_numpy(),
                group["value"].to_numpy(),
                ("interval",),
                False,
                0,
                now,
            )
    # KB verification: the verdict
    kb = internal[
        (internal["kind"] == TaskKind.KB_VERIFY) & internal["verdict"].isin(VERDICT_ORDER)
    ]
    if len(kb):
        codes = kb["verdict"].map({v: i for i, v in enumerate(VERDICT_ORDER)}).to_numpy()
        out += _agreement_block(
            TaskKind.KB_VERIFY,
            "verdict",
            kb["item_id"].to_numpy(),
            codes,
            ("nominal",),
            True,
            n_boot,
            now,
            [float(i) for i in range(len(VERDICT_ORDER))],
        )
    return out
