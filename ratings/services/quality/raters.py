"""Per-rater quality: agreement with the others, gold accuracy, speed, trends; the
contested items and the coincidence matrices of the dashboard."""

from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.conf import settings

from ratings.consensus.kb import is_vote
from ratings.metrics import (
    distribution_divergence,
    position_bias,
)
from ratings.metrics.long import (
    cohen_kappa_pairs,
    loo_interval_agreement,
    loo_interval_residual,
    loo_nominal_agreement,
)
from ratings.models import (
    Scale,
    TaskKind,
)
from ratings.quality_data import QualityData, preference_label
from ratings.services.quality.agreements import VERDICT_ORDER, _internal


def _primary(data: QualityData) -> pd.DataFrame:
    """Per judgment: a primary label, its agreement with the leave-one-out consensus, and
    whether it matched the gold answer (gold items only)."""
    j = data.judgments.copy()
    j["label"] = np.nan
    j["agreement"] = np.nan
    j["gold_correct"] = np.nan
    j["residual"] = np.nan
    s = data.scores
    # scoring: per-judgment mean agreement over numeric criteria; label = first Likert score
    score_rows = s[s["kind"] == TaskKind.SCORE]
    if len(score_rows):
        parts = []
        residuals = []
        for key, g in score_rows.groupby("criterion_key", sort=False):
            crit = data.criteria.get(key)
            if crit is not None and crit.scale == Scale.LIKERT:
                span = float((crit.points or 5) - 1)
                agree = loo_interval_agreement(g["item_id"].to_numpy(), g["value"].to_numpy(), span)
                residuals.append(
                    pd.DataFrame(
                        {
                            "judgment_id": g["judgment_id"].to_numpy(),
                            "residual": loo_interval_residual(
                                g["item_id"].to_numpy(), g["value"].to_numpy(), span
                            ),
                        }
                    )
                )
            else:
                agree = loo_nominal_agreement(g["item_id"].to_numpy(), g["value"].to_numpy())
            parts.append(
                pd.DataFrame({"judgment_id": g["judgment_id"].to_numpy(), "agreement": agree})
            )
        per_criterion = pd.concat(parts)
        if per_criterion["judgment_id"].is_unique:  # one numeric criterion: nothing to average
            per_j = per_criterion.set_index("judgment_id")["agreement"]
        else:
            per_j = per_criterion.groupby("judgment_id")["agreement"].mean()
        j.loc[j["kind"] == TaskKind.SCORE, "agreement"] = (
            j.loc[j["kind"] == TaskKind.SCORE, "judgment_id"].map(per_j).to_numpy()
        )
        if residuals:  # leniency: the mean over the judgment's Likert criteria
            per_r = pd.concat(residuals).groupby("judgment_id")["residual"].mean()
            j.loc[j["kind"] == TaskKind.SCORE, "residual"] = (
                j.loc[j["kind"] == TaskKind.SCORE, "judgment_id"].map(per_r).to_numpy()
            )
        likert = [k for k, c in data.criteria.items() if c.scale == Scale.LIKERT]
        if likert:
            first = score_rows[score_rows["criterion_key"] == likert[0]].set_index("judgment_id")[
                "value"
            ]
            mask = j["kind"] == TaskKind.SCORE
            j.loc[mask, "label"] = j.loc[mask, "judgment_id"].map(first).to_numpy()
    pw = j["kind"] == TaskKind.PAIRWISE
    if pw.any():
        lab = preference_label(j.loc[pw, "preference"].to_numpy())
        j.loc[pw, "label"] = lab
        j.loc[pw, "agreement"] = loo_nominal_agreement(j.loc[pw, "item_id"].to_numpy(), lab)
    kb = (j["kind"] == TaskKind.KB_VERIFY) & j["verdict"].isin(VERDICT_ORDER)  # no abstentions
    if kb.any():
        codes = j.loc[kb, "verdict"].map({v: i for i, v in enumerate(VERDICT_ORDER)}).to_numpy()
        j.loc[kb, "label"] = codes
        j.loc[kb, "agreement"] = loo_nominal_agreement(j.loc[kb, "item_id"].to_numpy(), codes)
    if data.gold_answers:
        gold = j["is_gold"] == 1
        gold_scores = s[s["judgment_id"].isin(j.loc[gold, "judgment_id"])]
        by_judgment: dict[int, dict] = defaultdict(dict)
        for judgment_id, key, value in zip(
            gold_scores["judgment_id"].tolist(),
            gold_scores["criterion_key"].tolist(),
            gold_scores["value"].tolist(),
            strict=True,
        ):
            by_judgment[judgment_id][key] = value
        rows = j.loc[gold, ["judgment_id", "item_id", "kind", "preference", "verdict"]]
        j.loc[gold, "gold_correct"] = [
            _gold_correct(
                row,
                data.gold_answers.get(int(row["item_id"]), {}),
                by_judgment.get(row["judgment_id"], {}),
            )
            for row in rows.to_dict("records")
        ]
    return j


def _gold_correct(row, answer: dict, scores: dict) -> float:
    """1.0 when the judgment matches the item's known answer, 0.0 when not, NaN if unknown."""
    if row["kind"] == TaskKind.PAIRWISE and "preference" in answer:
        return float(np.sign(row["preference"]) == np.sign(answer["preference"]))
    if row["kind"] == TaskKind.PAIRWISE and "winner" in answer:
        want = {"a": -1, "b": 1, "tie": 0}.get(str(answer["winner"]).lower())
        return float(np.sign(row["preference"]) == want) if want is not None else np.nan
    if row["kind"] == TaskKind.KB_VERIFY and "verdict" in answer:
        return float(row["verdict"] == answer["verdict"]) if is_vote(row["verdict"]) else np.nan
    if (
        row["kind"] == TaskKind.SCORE
        and isinstance(answer.get("scores"), dict)
        and answer["scores"]
    ):
        tolerance = float(answer.get("tolerance", 0))
        return float(
            all(
                k in scores and abs(float(scores[k]) - float(v)) <= tolerance
                for k, v in answer["scores"].items()
            )
        )
    return np.nan


def coincidence_matrices(data: QualityData, primary: pd.DataFrame) -> dict:
    """Krippendorff's coincidence matrix (pairs of values within items) per kind/criterion:
    the confusion matrix between raters, symmetric, rows and columns the labels used."""
    out = {}
    j = _internal(primary)
    blocks = []
    for kind in (TaskKind.PAIRWISE, TaskKind.KB_VERIFY):
        g = j[(j["kind"] == kind) & j["label"].notna()]
        if len(g):
            names = ["A better", "tie", "B better"] if kind == TaskKind.PAIRWISE else VERDICT_ORDER
            offset = -1 if kind == TaskKind.PAIRWISE else 0
            blocks.append(
                (
                    f"{kind}/",
                    g["item_id"].to_numpy(),
                    g["label"].to_numpy().astype(int) - offset,
                    names,
                )
            )
    s = _internal(data.scores)
    s = s[s["kind"] == TaskKind.SCORE]
    for key, g in s.groupby("criterion_key", sort=True):
        crit = data.criteria.get(key)
        if crit is None or crit.scale not in (Scale.LIKERT, Scale.BINARY, Scale.SINGLE_CHOICE):
            continue
        if crit.scale == Scale.LIKERT:
            names = [str(p) for p in range(1, (crit.points or 5) + 1)]
            codes = g["value"].to_numpy().astype(int) - 1
        elif crit.scale == Scale.BINARY:
            names, codes = ["no", "yes"], g["value"].to_numpy().astype(int)
        else:
            names, codes = list(crit.options), g["value"].to_numpy().astype(int)
        blocks.append((f"score/{key}", g["item_id"].to_numpy(), codes, names))
    for name, items, codes, labels in blocks:
        k = len(labels)
        valid = (codes >= 0) & (codes < k)
        items, codes = items[valid], codes[valid]
        if not len(items):
            continue
        u, _ = pd.factorize(items, sort=True)
        counts = (
            np.bincount(u * k + codes, minlength=(u.max() + 1) * k).reshape(-1, k).astype(float)
        )
        m = counts.sum(axis=1)
        pairable = m >= 2
        c, w = counts[pairable], 1.0 / (m[pairable] - 1)
        matrix = (c * w[:, None]).T @ c - np.diag((c * w[:, None]).sum(axis=0))
        out[name] = {"labels": labels, "matrix": np.round(matrix, 3).tolist()}
    return out


def contested_items(primary: pd.DataFrame, limit: int = 50) -> list[dict]:
    """The items whose raters agree least (mean leave-one-out agreement), worst first."""
    j = primary[(primary["is_external"] == 0) & primary["agreement"].notna()]
    if not len(j):
        return []
    per = j.groupby("item_id").agg(
        agreement=("agreement", "mean"), n=("agreement", "size"), kind=("kind", "first")
    )
    per = per[per["n"] >= 2].sort_values(["agreement", "n"], ascending=[True, False]).head(limit)
    return [
        {
            "item_id": int(i),
            "kind": r.kind,
            "agreement": round(float(r.agreement), 4),
            "n": int(r.n),
        }
        for i, r in per.iterrows()
    ]


def rater_trends(primary: pd.DataFrame) -> dict[int, list]:
    """Per rater: daily mean agreement with the consensus and the day's count."""
    j = primary[(primary["is_external"] == 0) & primary["agreement"].notna()]
    if not len(j):
        return {}
    day = (j["created_at"] // 86400).astype(int)
    per = j.assign(day=day).groupby(["rater_id", "day"])["agreement"].agg(["mean", "size"])
    raters = per.index.get_level_values("rater_id").tolist()
    days = per.index.get_level_values("day").tolist()
    dates = {d: datetime.fromtimestamp(d * 86400, tz=UTC).date().isoformat() for d in set(days)}
    out: dict[int, list] = defaultdict(list)
    for rater, d, mean, size in zip(
        raters, days, per["mean"].tolist(), per["size"].tolist(), strict=True
    ):
        out[int(rater)].append([dates[d], round(float(mean), 4), int(size)])
    return out


def _label_scales(data: QualityData) -> dict[str, np.ndarray]:
    """Per task kind, every value its primary label can take, in scale order: the Likert
    points of the first Likert criterion (scoring), A / tie / B (pairwise), the verdicts (KB).
    The weighted kappa's distances are positions on this full scale, used or not."""
    out = {
        TaskKind.PAIRWISE: np.array([-1.0, 0.0, 1.0]),
        TaskKind.KB_VERIFY: np.arange(len(VERDICT_ORDER), dtype=float),
    }
    likert = [c for c in data.criteria.values() if c.scale == Scale.LIKERT]
    if likert:
        out[TaskKind.SCORE] = np.arange(1, (likert[0].points or 5) + 1, dtype=float)
    return out


def _scale_codes(labels: np.ndarray, scale: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Codes of the labels on their full scale and its size; the observed labels (sorted)
    when the scale is unknown or a label lies off it."""
    labels = np.asarray(labels, dtype=float)
    if scale is not None:
        codes = np.searchsorted(scale, labels)
        inside = codes < scale.size
        if inside.all() and (scale[np.minimum(codes, scale.size - 1)] == labels).all():
            return codes.astype(np.int64), int(scale.size)
    codes, observed = pd.factorize(labels, sort=True)
    return codes, len(observed)


def _or_none(value: float) -> float | None:
    return None if value != value else float(value)


def compute_raters(
    data: QualityData, primary: pd.DataFrame, open_flags: dict[int, int]
) -> list[dict]:
    """One row per rater with internal judgments (sorted by rater id): volume, agreement with
    the consensus, gold accuracy, speed, position bias, straight-lining, label divergence
    from the team and Cohen's kappa with frequent co-raters. Grouped computations only; the
    statistical tests run once per rater (position bias, divergence) or are vectorised over
    rater pairs (kappa)."""
    j = _internal(primary)
    rows: dict[int, dict] = defaultdict(dict)
    by_rater = j.groupby("rater_id", sort=True)
    seconds = (j["time_ms"] / 1000).groupby(j["rater_id"], sort=True)
    totals = pd.DataFrame(
        {
            "n": by_rater.size(),
            "agreement": by_rater["agreement"].mean(),
            "gold_accuracy": by_rater["gold_correct"].mean(),
            "gold_n": by_rater["gold_correct"].count(),
            "median_seconds": seconds.median(),
            "mean_seconds": seconds.mean(),
        }
    )
    for rater, n, agreement, gold_accuracy, gold_n, median_s, mean_s in totals.itertuples():
        rows[int(rater)].update(
            n_judgments=int(n),
            agreement=_or_none(agreement),
            gold_accuracy=_or_none(gold_accuracy) if gold_n else None,
            gold_n=int(gold_n),
            median_seconds=_or_none(median_s),
            mean_seconds=_or_none(mean_s),
            open_flags=open_flags.get(int(rater), 0),
        )
    pw = j[(j["kind"] == TaskKind.PAIRWISE) & (j["preference"] != 0) & j["left_is_a"].notna()]
    left = ((pw["preference"] < 0) == (pw["left_is_a"] == 1)).groupby(pw["rater_id"], sort=True)
    for rater, picks, n in left.agg(["sum", "size"]).itertuples():
        bias = position_bias(int(picks), int(n))
        rows[int(rater)].update(left_share=bias.get("share"), left_p_value=bias.get("p_value"))
    # straight-lining: identical scores on every criterion of a judgment
    s = _internal(data.scores)
    s = s[s["kind"] == TaskKind.SCORE]
    if not s["judgment_id"].is_unique:  # else no judgment has two scores
        per = s.groupby("judgment_id").agg(
            n=("value", "size"), distinct=("value", "nunique"), rater=("rater_id", "first")
        )
        per = per[per["n"] >= 2]
        for rater, share in (per["distinct"] == 1).groupby(per["rater"]).mean().items():
            rows[int(rater)]["straight_lining"] = float(share)
    # label distribution against the team's, per kind
    for _kind, g in j[j["label"].notna()].groupby("kind"):
        team = g["label"].value_counts()
        k = len(team)
        r, raters = pd.factorize(g["rater_id"].to_numpy(), sort=True)
        code = team.index.get_indexer(g["label"])
        counts = np.bincount(r * k + code, minlength=raters.size * k)
        team_counts = team.to_numpy()
        for rater, mine in zip(raters.tolist(), counts.reshape(-1, k), strict=True):
            others = team_counts - mine
            if mine.sum() >= 10 and others.sum() > 0:
                d = distribution_divergence(mine.tolist(), others.tolist())
                row = rows[int(rater)]
                if (
                    row.get("divergence_js") is None
                    or (d.get("js_distance") or 0) > row["divergence_js"]
                ):
                    row.update(
                        divergence_js=d.get("js_distance"), divergence_p_value=d.get("p_value")
                    )
    # Cohen's kappa with frequent co-raters, on the primary label of each kind
    scale = _label_scales(data)
    for kind, g in j[j["label"].notna()].groupby("kind"):
        codes, n_categories = _scale_codes(g["label"].to_numpy(), scale.get(kind))
        weights = "quadratic" if kind == TaskKind.SCORE else None
        min_shared = getattr(settings, "QUALITY_MIN_SHARED_ITEMS", 20)
        for a, b, n, kappa in cohen_kappa_pairs(
            g["item_id"].to_numpy(),
            g["rater_id"].to_numpy(),
            codes,
            n_categories=n_categories,
            weights=weights,
            min_shared=min_shared,
        ):
            for me, other in ((a, b), (b, a)):
                rows[me].setdefault("detail", {}).setdefault("kappa", []).append(
                    {"kind": kind, "with": other, "shared": n, "kappa": kappa}
                )
    for row in rows.values():
        kappas = [
            k["kappa"] for k in row.get("detail", {}).get("kappa", []) if k["kappa"] is not None
        ]
        row["mean_kappa"] = float(np.mean(kappas)) if kappas else None
        if "kappa" in row.get("detail", {}):
            row["detail"]["kappa"] = sorted(row["detail"]["kappa"], key=lambda k: -k["shared"])[:10]
    return [dict(rater_id=r, **v) for r, v in rows.items() if v.get("n_judgments")]
