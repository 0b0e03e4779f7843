"""Quality runs: agreement per task kind and criterion, per-rater quality, drift flags.

Guarantees of ``quality_compute``:
- reads judgments outside any long transaction and writes a run's results in one short
  transaction at the end; safe to run twice: a run whose judgments are unchanged since the
  last successful run is skipped (``data_version``), and drift flags are upserted on
  (project, rater, detector, window kind, window start), so a flag is never duplicated and a
  lead's acknowledgement or resolution is kept;
- incremental reading: on PostgreSQL a run reads only the judgments added since the last
  run (``ratings.quality_data``); the statistics are then recomputed over all judgments,
  since the leave-one-out consensus, the expanding drift baselines and the
  Benjamini-Hochberg family tie every window to the others (``force`` reads everything);
- every undefined statistic is stored without a value and with the reason;
- database errors propagate (the Celery task retries); bad data never raises.
"""

import hashlib
import time
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.models import Project, Role
from conversations.services.access import require_role
from ratings import drift
from ratings.metrics import (
    distribution_divergence,
    fleiss_kappa_result,
    gwet_ac1_result,
    krippendorff_alpha_ci,
    krippendorff_alpha_result,
    pairwise_agreement_result,
    percent_agreement_result,
    position_bias,
)
from ratings.metrics.categorical_ci import categorical_cis
from ratings.metrics.long import (
    cohen_kappa_pairs,
    loo_interval_agreement,
    loo_nominal_agreement,
    units_by_slot,
)
from ratings.models import (
    AgreementSnapshot,
    DriftFlag,
    FlagState,
    QualityRun,
    RaterQuality,
    RunState,
    Scale,
    TaskKind,
)
from ratings.quality_data import Fingerprint, QualityData, load, preference_label

READ_CHARS_PER_SECOND = 40  # a fast skim: ~480 words a minute
VERDICT_ORDER = ["correct", "incomplete", "incorrect", "cannot_judge"]


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
    kind: str, criterion: str, units, values, levels, categorical: bool, n_boot: int, now
) -> list[dict]:
    """Alpha at each level (with a bootstrap interval), and the categorical statistics."""
    rows = units_by_slot(units, values)
    out = []
    for level in levels:
        result = krippendorff_alpha_result(rows.T, level)
        ci = _ci(rows, level, n_boot) if result.value is not None else (None, None)
        out.append(_snapshot(kind, criterion, f"alpha_{level}", result, ci, now))
    if categorical:
        cis = categorical_cis(rows, n_boot=n_boot, seed=0) if n_boot > 0 else {}
        for metric, compute in (
            ("fleiss_kappa", fleiss_kappa_result),
            ("gwet_ac1", gwet_ac1_result),
            ("percent_agreement", percent_agreement_result),
        ):
            result = compute(rows)
            ci = cis.get(metric, (None, None)) if result.value is not None else (None, None)
            out.append(_snapshot(kind, criterion, metric, result, ci, now))
    return out


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
    kb = internal[(internal["kind"] == TaskKind.KB_VERIFY) & (internal["verdict"] != "")]
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
        )
    return out


def _primary(data: QualityData) -> pd.DataFrame:
    """Per judgment: a primary label, its agreement with the leave-one-out consensus, and
    whether it matched the gold answer (gold items only)."""
    j = data.judgments.copy()
    j["label"] = np.nan
    j["agreement"] = np.nan
    j["gold_correct"] = np.nan
    s = data.scores
    # scoring: per-judgment mean agreement over numeric criteria; label = first Likert score
    score_rows = s[s["kind"] == TaskKind.SCORE]
    if len(score_rows):
        parts = []
        for key, g in score_rows.groupby("criterion_key", sort=False):
            crit = data.criteria.get(key)
            if crit is not None and crit.scale == Scale.LIKERT:
                agree = loo_interval_agreement(
                    g["item_id"].to_numpy(), g["value"].to_numpy(), float((crit.points or 5) - 1)
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
    kb = (j["kind"] == TaskKind.KB_VERIFY) & (j["verdict"] != "")
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
        return float(row["verdict"] == answer["verdict"])
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
    for kind, g in j[j["label"].notna()].groupby("kind"):
        codes, labels = pd.factorize(g["label"].to_numpy(), sort=True)
        weights = "quadratic" if kind == TaskKind.SCORE else None
        min_shared = getattr(settings, "QUALITY_MIN_SHARED_ITEMS", 20)
        for a, b, n, kappa in cohen_kappa_pairs(
            g["item_id"].to_numpy(),
            g["rater_id"].to_numpy(),
            codes,
            n_categories=len(labels),
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


def compute_drift(
    primary: pd.DataFrame, config: drift.DriftConfig | None = None
) -> list[drift.DriftFlag]:
    """Drift flags from the per-judgment frame (internal judgments only), one stream per rater.

    Signals per judgment: agreement with the leave-one-out consensus, gold correctness, the
    primary label (``"<kind>:<label>"``), seconds on task, the reading-time floor of the
    item (characters / READ_CHARS_PER_SECOND) and, for decisive pairwise judgments with a
    known side, whether the left side was picked.
    """
    j = _internal(primary)
    order = np.argsort(j["created_at"].to_numpy(dtype=float), kind="stable")

    def column(name: str) -> np.ndarray:
        return j[name].to_numpy(dtype=float)[order]

    preference, left_is_a, gold, label = (
        column(c) for c in ("preference", "left_is_a", "gold_correct", "label")
    )
    kind, kinds = pd.factorize(j["kind"])
    kind = kind[order]
    pairwise = np.asarray(kinds == TaskKind.PAIRWISE)[kind]
    # NaN preference counts as decisive, as the comparison ``preference != 0`` says.
    decisive = pairwise & (preference != 0) & ~np.isnan(left_is_a)
    left_pick = np.where(decisive, ((preference < 0) == (left_is_a == 1)).astype(float), np.nan)
    codes = np.full(len(j), -1, dtype=np.int64)
    label_values: list[str] = []
    has_label = ~np.isnan(label)
    for k, name in enumerate(kinds.tolist()):
        rows = has_label & (kind == k)
        inverse, values = pd.factorize(label[rows], sort=True)
        codes[rows] = len(label_values) + inverse
        label_values += [f"{name}:{v:g}" for v in values]
    return drift.detect_drift_columns(
        j["rater_id"].to_numpy()[order],
        column("created_at"),
        agreement=column("agreement"),
        gold_correct=np.where(np.isnan(gold), np.nan, (gold != 0).astype(float)),
        label=codes,
        label_values=label_values,
        seconds=column("time_ms") / 1000,
        min_seconds=column("chars") / READ_CHARS_PER_SECOND,
        left_pick=left_pick,
        config=config or drift.DriftConfig(),
    )


def quality_compute(
    *, project_id: int, trigger: str = "schedule", force: bool = False, n_boot: int | None = None
) -> QualityRun:
    """Compute and store a project's quality figures (see the module docstring)."""
    project = Project.objects.get(pk=project_id)
    version = data_version(project)
    last = QualityRun.objects.filter(project=project, state=RunState.SUCCEEDED).first()
    if last is not None and last.data_version == version and not force:
        return last
    started = time.perf_counter()
    timings: dict[str, float] = {}
    run = QualityRun.objects.create(
        project=project, trigger=trigger, started_at=timezone.now(), data_version=version
    )

    def lap(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        timings[name] = round(t1 - t0, 3)
        return t1

    try:
        t = time.perf_counter()
        data = load(project, use_cache=not force)  # forced: read everything again
        t = lap("load", t)
        timings["load_incremental"] = int(data.read == "incremental")
        now = timezone.now()
        boots = (
            n_boot if n_boot is not None else getattr(settings, "QUALITY_BOOTSTRAP_SAMPLES", 500)
        )
        agreements = compute_agreements(data, n_boot=boots, now=now)
        t = lap("agreement", t)
        primary = _primary(data)
        t = lap("per_judgment", t)
        flags = compute_drift(primary)
        t = lap("drift", t)
        open_counts: dict[int, int] = defaultdict(int)
        for f in flags:
            open_counts[int(f.rater)] += 1
        rater_rows = compute_raters(data, primary, open_counts)
        trends = rater_trends(primary)
        for row in rater_rows:
            row.setdefault("detail", {})["trend"] = trends.get(row["rater_id"], [])
        run.contested = contested_items(primary)
        run.confusion = coincidence_matrices(data, primary)
        t = lap("raters", t)
        with transaction.atomic():
            AgreementSnapshot.objects.bulk_create(
                AgreementSnapshot(run=run, project=project, **a) for a in agreements
            )
            RaterQuality.objects.bulk_create(
                RaterQuality(run=run, project=project, **r) for r in rater_rows
            )
            _upsert_flags(project=project, run=run, flags=flags)
            run.state = RunState.SUCCEEDED
            run.n_judgments = len(data.judgments)
            run.finished_at = timezone.now()
            run.duration_ms = int((time.perf_counter() - started) * 1000)
            lap("write", t)
            run.timings = timings
            run.save()
    except Exception as exc:
        QualityRun.objects.filter(pk=run.pk).update(
            state=RunState.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    return run


def _upsert_flags(*, project: Project, run: QualityRun, flags: list[drift.DriftFlag]) -> None:
    for f in flags:
        evidence = f.to_dict()
        obj, created = DriftFlag.objects.get_or_create(
            project=project,
            rater_id=int(f.rater),
            detector=f.detector,
            window_kind=f.window_kind,
            window_start=f.window_start,
            defaults={"window_end": f.window_end, "evidence": _jsonable(evidence), "run": run},
        )
        if not created and obj.state == FlagState.OPEN:
            obj.window_end, obj.evidence, obj.run = f.window_end, _jsonable(evidence), run
            obj.save(update_fields=["window_end", "evidence", "run", "updated_at"])


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def quality_request(*, project: Project, user) -> None:
    """A lead asks for a run now; the worker computes it after commit."""
    require_role(user=user, project=project, roles=(Role.LEAD,), action="running the quality check")
    from ratings.tasks import quality_refresh as quality_refresh_task

    transaction.on_commit(lambda: quality_refresh_task.delay(project.pk, "manual"))


@transaction.atomic
def flag_update(*, flag: DriftFlag, user, state: str, note: str = "") -> DriftFlag:
    """A lead acknowledges or resolves a flag (resolving needs a note)."""
    require_role(user=user, project=flag.project, roles=(Role.LEAD,), action="handling drift flags")
    if state not in FlagState.values:
        raise ValueError(f"unknown state {state!r}")
    if state == FlagState.RESOLVED and not note.strip():
        from django.core.exceptions import ValidationError

        raise ValidationError({"note": "say how the flag was resolved"})
    flag.state, flag.note, flag.updated_by = state, note.strip(), user
    flag.save(update_fields=["state", "note", "updated_by", "updated_at"])
    return flag
