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
    DriftCursor,
    DriftFlag,
    FlagMethod,
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


def drift_columns(primary: pd.DataFrame) -> dict:
    """The drift detectors' observation columns from the per-judgment frame (judgments that
    count for quality only), in time order, one stream per rater.

    Signals per judgment: agreement with the leave-one-out consensus, the signed residual
    against it (Likert scores, over the scale's range), gold correctness, the primary label
    (``"<kind>:<label>"``), seconds on task, the reading-time floor of the item (characters /
    READ_CHARS_PER_SECOND) and, for decisive pairwise judgments with a known side, whether
    the left side was picked.
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
    residual = column("residual") if "residual" in j.columns else np.full(len(j), np.nan)
    return {
        "rater": j["rater_id"].to_numpy()[order],
        "at": column("created_at"),
        "agreement": column("agreement"),
        "residual": np.clip(residual, -1.0, 1.0),
        "gold_correct": np.where(np.isnan(gold), np.nan, (gold != 0).astype(float)),
        "label": codes,
        "label_values": label_values,
        "seconds": column("time_ms") / 1000,
        "min_seconds": column("chars") / READ_CHARS_PER_SECOND,
        "left_pick": left_pick,
    }


def compute_drift(
    primary: pd.DataFrame, config: drift.DriftConfig | None = None
) -> list[drift.DriftFlag]:
    """One-look (batch) drift flags over the whole history: one Benjamini-Hochberg family
    (see ``ratings.drift``). For analyses of a finished project; the service's runs use
    :func:`drift_online`, whose guarantee holds across runs."""
    c = drift_columns(primary)
    signals = {k: v for k, v in c.items() if k not in ("rater", "at")}
    return drift.detect_drift_columns(
        c["rater"], c["at"], **signals, config=config or drift.DriftConfig()
    )


def drift_config() -> drift.OnlineConfig:
    """The service's online drift configuration: ``drift.DEFAULT_ONLINE_CONFIG``, whose
    guarantee docs/quality.md states."""
    return drift.DEFAULT_ONLINE_CONFIG


def drift_online(*, project: Project, columns: dict) -> drift.OnlineResult:
    """Test the complete windows that no earlier run tested (``DriftCursor`` rows). Reads
    only; :func:`_record_drift` writes the result."""
    tested = {
        (rater, detector): n
        for rater, detector, n in DriftCursor.objects.filter(project=project).values_list(
            "rater_id", "detector", "windows_tested"
        )
    }
    return drift.detect_drift_online_columns(columns, tested, drift_config())


_FLAG_WORDS = {
    "agreement": "mean agreement with the other raters",
    "leniency": "mean score minus the other raters' (share of the scale)",
    "gold_accuracy": "accuracy on gold items",
    "label_distribution": "share of the label that rose most",
    "speed": "share of too-fast judgments",
    "position_bias": "share of left picks",
}


def flag_summary(f: drift.DriftFlag) -> str:
    """One sentence for a lead: what changed, since when, how sure."""
    what = _FLAG_WORDS.get(f.detector, f.detector)
    label = f.detail.get("label")
    if f.detector == "label_distribution" and label is not None:
        what = f"share of label {label}"
    since = f.window_start.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{what}: {f.baseline_value:.3g} before, {f.window_value:.3g} in the {f.n_window} "
        f"judgments from {since} (p = {f.p_value:.2g}; flagged at p <= {f.threshold:.2g}, "
        f"so a steady rater gets such a flag by mistake at most once in "
        f"{drift_config().false_alarm_judgments():,} judgments)"
    )


def _record_drift(
    *, project: Project, run: QualityRun, result: drift.OnlineResult, columns: dict, now
) -> None:
    """Inside the run's write transaction: store the tested-window counts, open a flag on the
    first alarm of a (rater, detector) with no open or acknowledged flag (later alarms
    confirm it), and re-check every open or acknowledged flag on the latest data.

    The counts are re-read under a row lock, so that of two runs at the same time only the
    first records a window's verdict; the other ignores the windows it tested too."""
    locked = {
        (c.rater_id, c.detector): c
        for c in DriftCursor.objects.select_for_update().filter(project=project)
    }
    before = {key: c.windows_tested for key, c in locked.items()}
    fresh, moved = [], []
    for key, n in result.tested.items():
        cursor = locked.get(key)
        if cursor is None:
            fresh.append(
                DriftCursor(
                    project=project, rater_id=int(key[0]), detector=key[1], windows_tested=n
                )
            )
        elif n > cursor.windows_tested:
            cursor.windows_tested, cursor.updated_at = n, now
            moved.append(cursor)
    DriftCursor.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=2000)
    DriftCursor.objects.bulk_update(moved, ["windows_tested", "updated_at"], batch_size=2000)
    live = {
        (f.rater_id, f.detector): f
        for f in DriftFlag.objects.filter(
            project=project,
            method=FlagMethod.ONLINE,
            state__in=(FlagState.OPEN, FlagState.ACKNOWLEDGED),
        ).order_by("-window_start")
    }
    by_key: dict[tuple[int, str], list[drift.DriftFlag]] = defaultdict(list)
    for alarm in result.alarms:
        key = (int(alarm.rater), alarm.detector)
        if alarm.detail["window_index"] >= before.get(key, 0):  # else recorded by another run
            by_key[key].append(alarm)
    for key, alarms in by_key.items():
        flag = live.get(key)
        if flag is None:
            first = alarms.pop(0)
            evidence = _jsonable(first.to_dict())
            evidence["summary"] = flag_summary(first)
            flag, _ = DriftFlag.objects.get_or_create(
                project=project,
                rater_id=key[0],
                detector=first.detector,
                window_kind=first.window_kind,
                window_start=first.window_start,
                defaults={
                    "window_end": first.window_end,
                    "evidence": evidence,
                    "run": run,
                    "method": FlagMethod.ONLINE,
                },
            )
            live[key] = flag
        if alarms:  # later significant windows confirm the open flag
            latest = _jsonable(alarms[-1].to_dict())
            latest["summary"] = flag_summary(alarms[-1])
            flag.evidence = {
                **flag.evidence,
                "confirmations": int(flag.evidence.get("confirmations", 0)) + len(alarms),
                "latest_alarm": latest,
            }
            flag.save(update_fields=["evidence", "updated_at"])
    if live:
        _recheck(flags=list(live.values()), columns=columns, now=now)


def _recheck(*, flags: list[DriftFlag], columns: dict, now) -> None:
    """Mark each flag supported or not by the latest data; a flag is never deleted."""
    mine = np.isin(columns["rater"], [f.rater_id for f in flags])  # only the flagged raters
    columns = {k: (v[mine] if isinstance(v, np.ndarray) else v) for k, v in columns.items()}
    checks = drift.drift_support_columns(
        columns,
        [
            (f.rater_id, f.detector, f.window_start.timestamp(), f.window_end.timestamp())
            for f in flags
        ],
        drift_config(),
    )
    for flag, check in zip(flags, checks, strict=True):
        supported = check is not None and check.supported
        flag.support = _jsonable(check.to_dict()) if check is not None else {"supported": False}
        flag.support_checked_at = now
        if supported:
            flag.unsupported_since = None
        elif flag.unsupported_since is None:
            flag.unsupported_since = now
        flag.is_supported = supported
        flag.save(
            update_fields=[
                "support",
                "support_checked_at",
                "unsupported_since",
                "is_supported",
                "updated_at",
            ]
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
            columns = drift_columns(primary)
            found = drift_online(project=project, columns=columns)
            t = lap("drift", t)
            rater_rows = compute_raters(data, primary, {})
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
                _record_drift(project=project, run=run, result=found, columns=columns, now=now)
                open_counts: dict[int, int] = defaultdict(int)
                for rater_id in DriftFlag.objects.filter(
                    project=project, state=FlagState.OPEN
                ).values_list("rater_id", flat=True):
                    open_counts[rater_id] += 1
                for row in rater_rows:
                    row["open_flags"] = open_counts.get(row["rater_id"], 0)
                RaterQuality.objects.bulk_create(
                    RaterQuality(run=run, project=project, **r) for r in rater_rows
                )
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
