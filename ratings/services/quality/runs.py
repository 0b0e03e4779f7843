"""A quality run from start to end (drift included), its requests, and flag updates."""

import time
from collections import defaultdict
from datetime import datetime

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.jobs import failure_message, heartbeat, job_fail, task_enqueue
from conversations.models import Project, Role
from conversations.services.access import require_role
from ratings import drift
from ratings.models import (
    AgreementSnapshot,
    DriftFlag,
    FlagState,
    QualityRun,
    RaterQuality,
    RunState,
    TaskKind,
)
from ratings.quality_data import load
from ratings.services.quality.agreements import (
    _internal,
    compute_agreements,
    data_version,
)
from ratings.services.quality.raters import (
    _primary,
    coincidence_matrices,
    compute_raters,
    contested_items,
    rater_trends,
)

READ_CHARS_PER_SECOND = 40  # a fast skim: ~480 words a minute


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
    now = timezone.now()
    run = QualityRun.objects.create(
        project=project, trigger=trigger, started_at=now, heartbeat_at=now, data_version=version
    )

    def lap(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        timings[name] = round(t1 - t0, 3)
        return t1

    try:
        with heartbeat(run):  # a run whose worker dies is failed by jobs_sweep
            t = time.perf_counter()
            data = load(project, use_cache=not force)  # forced: read everything again
            t = lap("load", t)
            timings["load_incremental"] = int(data.read == "incremental")
            now = timezone.now()
            boots = (
                n_boot
                if n_boot is not None
                else getattr(settings, "QUALITY_BOOTSTRAP_SAMPLES", 500)
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
        job_fail(run, failure_message(exc))
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

    task_enqueue(quality_refresh_task, project.pk, "manual")  # broker down: BrokerUnavailable


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
