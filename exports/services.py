"""Export jobs: created by leads and data consumers, rendered by a worker, downloaded later."""

import shutil
import typing
from datetime import UTC, datetime
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config import accel
from conversations.jobs import job_enqueue, job_run
from conversations.models import JobState, Project
from conversations.services.access import require_role
from exports.canonical import ExportFilters
from exports.models import ExportJob
from exports.pipeline import ExportOptions, run_export
from exports.reports.common import rater_names_visible
from exports.selectors import EXPORT_ROLES, export_job_list

OPTION_KEYS = {
    "aggregation",
    "tie_margin",
    "both_bad",
    "min_raters",
    "min_agreement",
    "test_fraction",
    "seed",
    "margin",
    "kto_source",
    "kto_criterion",
    "kto_good",
    "kto_bad",
    "reveal_raters",
}
FILTER_KEYS = {
    "include_external",
    "exclude_gold",
    "exclude_flagged_raters",
    "date_from",
    "date_to",
    "source",
    "model",
}


def _check_option_types(values: dict) -> None:
    """Each value as ``ExportOptions`` and ``ExportFilters`` declare its type (the dataclasses
    are the declaration), and no NUL in text: refused here with the option's name, rather
    than stored (PostgreSQL's jsonb refuses NUL: a 500) or failing later in the worker."""
    hints = {**typing.get_type_hints(ExportOptions), **typing.get_type_hints(ExportFilters)}
    errors = {}
    for key, value in values.items():
        if value is None or key not in hints:
            continue
        allowed = typing.get_args(hints[key]) or (hints[key],)
        if isinstance(value, str) and "\x00" in value:
            errors[key] = "must not contain NUL characters"
        elif datetime in allowed and isinstance(value, str):
            continue  # parsed below
        elif isinstance(value, bool) != (bool in allowed) or not (
            isinstance(value, allowed) or (float in allowed and isinstance(value, int))
        ):
            names = " or ".join(t.__name__ for t in allowed if t is not type(None))
            errors[key] = f"expected {names}, got {type(value).__name__}"
    if errors:
        raise ValidationError(errors)


def options_from_dict(*, fmt: str, file_type: str, compress: bool, values: dict) -> ExportOptions:
    """Build and check export options from plain values (API, form, command line)."""
    unknown = set(values) - OPTION_KEYS - FILTER_KEYS
    if unknown:
        raise ValidationError({"options": f"unknown options: {', '.join(sorted(unknown))}"})
    _check_option_types(values)
    filters = {k: values[k] for k in FILTER_KEYS if values.get(k) not in (None, "")}
    for key in ("date_from", "date_to"):
        if key in filters and isinstance(filters[key], str):
            parsed = parse_datetime(filters[key])
            if parsed is None or parsed.tzinfo is None:
                raise ValidationError({key: "expected an ISO 8601 date-time with a time zone"})
            filters[key] = parsed
    opts = {k: values[k] for k in OPTION_KEYS if values.get(k) is not None}
    try:
        options = ExportOptions(
            format=fmt,
            file_type=file_type,
            compress=compress,
            filters=ExportFilters(**filters),
            **opts,
        )
        options.validate()
    except (TypeError, ValueError) as exc:
        raise ValidationError({"options": str(exc)}) from None
    return options


@transaction.atomic
def export_job_create(
    *,
    project: Project,
    user,
    fmt: str,
    file_type: str = "jsonl",
    compress: bool = False,
    values: dict | None = None,
) -> ExportJob:
    """Queue an export (leads and data consumers). Only a lead may reveal rater identities,
    unless the project shows them to consumers anyway."""
    role = require_role(user=user, project=project, roles=EXPORT_ROLES, action="exporting")
    values = dict(values or {})
    if values.get("reveal_raters") and not rater_names_visible(project=project, role=role):
        raise PermissionDenied("only a lead can export real rater names in this project")
    if project.show_rater_identities:
        values.setdefault("reveal_raters", True)
    options = options_from_dict(fmt=fmt, file_type=file_type, compress=compress, values=values)
    job = ExportJob.objects.create(
        project=project,
        created_by=user,
        format=fmt,
        file_type=file_type,
        compress=compress,
        options=options.as_dict(),
    )
    from exports.tasks import export_job_run as export_job_run_task

    job_enqueue(job, export_job_run_task)  # broker down: job failed, BrokerUnavailable
    return job


def job_dir(job: ExportJob) -> Path:
    return job.work_dir()


def export_job_run(*, job_id: int) -> ExportJob:
    """Render a queued export. Safe to run twice: a job that is not queued is left as it is.
    Whatever the exception, the job ends failed with its reason, its folder (partial files
    included) is removed and no file of it is offered for download (conversations/jobs.py)."""
    return job_run(ExportJob, job_id, _export_job_work)


def _export_job_work(job: ExportJob) -> None:
    job = ExportJob.objects.select_related("project", "created_by").get(pk=job.pk)
    out = job_dir(job)
    shutil.rmtree(out, ignore_errors=True)
    o = dict(job.options)
    filters = o.pop("filters", {})
    values = {**{k: v for k, v in o.items() if k in OPTION_KEYS}, **filters}
    options = options_from_dict(
        fmt=job.format, file_type=job.file_type, compress=job.compress, values=values
    )
    side = connections.create_connection("default") if accel.enabled("job_progress") else None

    def progress(done: int, total: int) -> None:
        if side is not None:
            with side.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {ExportJob._meta.db_table} SET progress = %s WHERE id = %s",
                    [done / total if total else 1.0, job.pk],
                )

    try:
        result = run_export(
            project=job.project,
            options=options,
            out_dir=out,
            base_name=export_base_name(job),
            created_by=job.created_by.username if job.created_by else "",
            progress=progress,
        )
    finally:
        if side is not None:
            side.close()
    files = [f.as_dict() for f in result.files] + [
        {"name": result.manifest_path.name, "kind": "manifest"},
        {"name": result.card_path.name, "kind": "card"},
    ]
    ExportJob.objects.filter(pk=job.pk).update(
        state=JobState.SUCCEEDED,
        progress=1.0,
        rows_written=sum(result.counts["rows_written"].values()),
        counts=result.counts,
        manifest=result.manifest,
        files=files,
        finished_at=timezone.now(),
    )


def export_base_name(job: ExportJob) -> str:
    """The stem of a job's files: project, format, the job's time (UTC) and number, so the
    downloads of different jobs never share a name (``demo-trl-20250301T101500Z-job7``)."""
    at = job.created_at.astimezone(UTC)
    return f"{job.project.slug}-{job.format}-{at:%Y%m%dT%H%M%SZ}-job{job.pk}"


def export_file_path(*, job: ExportJob, user, name: str) -> Path:
    """The path of one file of a finished job, for download. Leads and consumers only; a job
    with real rater names only for those who may see names (``export_job_list``)."""
    require_role(user=user, project=job.project, roles=EXPORT_ROLES, action="downloading exports")
    if not export_job_list(user=user).filter(pk=job.pk).exists():
        raise PermissionDenied("this export names raters, which your role may not see")
    if job.state != JobState.SUCCEEDED:
        raise ValidationError("this export is not finished")
    if name not in {f["name"] for f in job.files}:
        raise PermissionDenied("no such file in this export")
    return job_dir(job) / name
