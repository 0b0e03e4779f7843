"""Reads behind the quality dashboard, its API and its CSV files (leads only)."""

from django.contrib.auth import get_user_model
from django.db.models import Q

from conversations.models import Project
from ratings.models import (
    AgreementSnapshot,
    DriftFlag,
    FlagState,
    QualityRun,
    RaterQuality,
    RunState,
)

HEADLINE = {
    "score": ("alpha_interval", "alpha_nominal"),
    "pairwise": ("alpha_ordinal", "pairwise_agreement_with_ties"),
    "kb_verify": ("alpha_nominal",),
}


def project_rater(project: Project, rater_id: int):
    """The user ``rater_id`` if they belong to the project, else None: its members, and the
    raters its quality data names (a former member keeps their rows and flags). A lead reads
    the names of the project's own people only, never of any user by id."""
    people = (
        Q(memberships__project=project)
        | Q(quality_rows__project=project)
        | Q(drift_flags__project=project)
    )
    return get_user_model().objects.filter(people, pk=rater_id).distinct().first()


def latest_run(project: Project) -> QualityRun | None:
    return QualityRun.objects.filter(project=project, state=RunState.SUCCEEDED).first()


def agreement_history(
    project: Project,
    *,
    kind: str | None = None,
    criterion: str | None = None,
    metric: str | None = None,
) -> list[dict]:
    qs = AgreementSnapshot.objects.filter(project=project, run__state=RunState.SUCCEEDED)
    if kind:
        qs = qs.filter(kind=kind)
    if criterion is not None:
        qs = qs.filter(criterion=criterion)
    if metric:
        qs = qs.filter(metric=metric)
    return list(
        qs.order_by("kind", "criterion", "metric", "computed_at").values(
            "run_id",
            "computed_at",
            "kind",
            "criterion",
            "metric",
            "value",
            "ci_low",
            "ci_high",
            "n_units",
            "n_pairable_units",
            "n_values",
            "reason",
        )
    )


def agreement_series(project: Project) -> list[dict]:
    """One series per (kind, criterion) on its headline metric, for the over-time chart."""
    series: dict[tuple, dict] = {}
    for row in agreement_history(project):
        if row["metric"] not in HEADLINE.get(row["kind"], ()):
            continue
        preferred = HEADLINE[row["kind"]]
        key = (row["kind"], row["criterion"])
        current = series.get(key)
        if current and preferred.index(current["metric"]) < preferred.index(row["metric"]):
            continue
        if current is None or current["metric"] != row["metric"]:
            series[key] = current = {
                "name": f"{row['kind']} {row['criterion'] or 'overall'} ({row['metric']})",
                "metric": row["metric"],
                "points": [],
            }
        current["points"].append((row["computed_at"], row["value"], row["ci_low"], row["ci_high"]))
    return list(series.values())


def rater_table(project: Project, run: QualityRun | None) -> list[dict]:
    if run is None:
        return []
    names = dict(
        get_user_model().objects.filter(quality_rows__run=run).values_list("id", "username")
    )
    open_flags: dict[int, int] = {}
    for rater_id in DriftFlag.objects.filter(project=project, state=FlagState.OPEN).values_list(
        "rater_id", flat=True
    ):
        open_flags[rater_id] = open_flags.get(rater_id, 0) + 1
    rows = []
    for r in RaterQuality.objects.filter(run=run).order_by("rater_id"):
        rows.append(
            {
                "rater_id": r.rater_id,
                "rater": names.get(r.rater_id, str(r.rater_id)),
                "judgments": r.n_judgments,
                "agreement": r.agreement,
                "gold_accuracy": r.gold_accuracy,
                "gold_n": r.gold_n,
                "mean_kappa": r.mean_kappa,
                "median_seconds": r.median_seconds,
                "mean_seconds": r.mean_seconds,
                "left_share": r.left_share,
                "left_p_value": r.left_p_value,
                "straight_lining": r.straight_lining,
                "divergence_js": r.divergence_js,
                "open_flags": open_flags.get(r.rater_id, 0),
            }
        )
    return rows


def rater_trend(project: Project, rater_id: int) -> tuple[list, list[dict]]:
    """The rater's daily agreement (latest run) and every flag they have had."""
    run = latest_run(project)
    row = RaterQuality.objects.filter(run=run, rater_id=rater_id).first() if run else None
    trend = (row.detail or {}).get("trend", []) if row else []
    flags = list(
        DriftFlag.objects.filter(project=project, rater_id=rater_id)
        .order_by("window_start")
        .values(
            "id",
            "detector",
            "window_kind",
            "window_start",
            "window_end",
            "state",
            "note",
            "evidence",
            "method",
            "is_supported",
            "unsupported_since",
        )
    )
    return trend, flags


def quality_status(project: Project) -> dict:
    """Where the project's quality figures stand: the newest run (any state), whether a run
    is going on, and whether the newest finished run saw every current judgment (a manual
    run of unchanged data stores no new run: then the figures shown are already current)."""
    from ratings.services.quality.agreements import data_version

    newest = QualityRun.objects.filter(project=project).first()
    done = latest_run(project)
    return {
        "latest_run": None
        if newest is None
        else {
            "id": newest.pk,
            "state": newest.state,
            "trigger": newest.trigger,
            "started_at": newest.started_at,
            "finished_at": newest.finished_at,
            "error": newest.error,
        },
        "running": QualityRun.objects.filter(project=project, state=RunState.RUNNING).exists(),
        "up_to_date": done is not None and done.data_version == data_version(project),
    }
