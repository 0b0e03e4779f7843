"""Import jobs: an uploaded file, imported by a Celery worker, with progress in the job row."""

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import models, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from config import accel
from conversations.accel.job_progress import progress_connection
from conversations.jobs import job_enqueue, job_run
from conversations.models import ImportJob, JobState, Project, Role, SourceFormat
from conversations.services.access import require_role
from conversations.services.imports import ImportFailed, transcript_import


class UploadTooLarge(ValueError):
    """An upload over ``IMPORT_MAX_UPLOAD_BYTES``; the API answers 413, the page says it."""


def upload_size_check(upload: File) -> None:
    """Refuse an upload larger than ``IMPORT_MAX_UPLOAD_BYTES`` (transcripts and judgments).

    The file has been received by then (to a temporary file, not into memory); the proxy in
    front of the service should refuse larger bodies before they arrive (docs/formats.md)."""
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    if (upload.size or 0) > limit:
        raise UploadTooLarge(
            f"the file is {filesizeformat(upload.size)}; uploads are limited to "
            f"{filesizeformat(limit)} (RATELOOP_IMPORT_MAX_UPLOAD_BYTES). Split the file, or "
            "ask an administrator to import it from the command line."
        )


@transaction.atomic
def import_job_create(
    *, project: Project, user, upload: File, fmt: str | None = None, skip_invalid: bool = False
) -> ImportJob:
    """Store the upload and queue its import once committed. Leads only.

    Raises PermissionDenied for other roles, ``UploadTooLarge`` over the upload limit and
    ValueError for an unknown format.
    """
    require_role(user=user, project=project, roles=(Role.LEAD,), action="importing transcripts")
    upload_size_check(upload)
    if fmt and fmt not in SourceFormat.values:
        raise ValueError(
            f"unknown format {fmt!r}; expected one of {', '.join(SourceFormat.values)}"
        )
    name = (getattr(upload, "name", "") or "upload").rsplit("/", 1)[-1]
    job = ImportJob(
        project=project,
        created_by=user,
        original_name=name[:255],
        format=fmt or "",
        skip_invalid=skip_invalid,
        bytes_total=upload.size or 0,
    )
    job.file.save(name, upload, save=False)
    job.save()
    from conversations.tasks import transcript_import_job as transcript_import_job_task

    job_enqueue(job, transcript_import_job_task)  # broker down: job failed, BrokerUnavailable
    return job


def import_progress_writer(job_id: int, model: type[models.Model] = ImportJob):
    """(write, connection) for a job's progress while it runs, or (None, None): then progress
    is only written at the end. ``model``: a job with ``bytes_read`` and ``records_read``
    (the judgment import's too)."""
    if accel.enabled("job_progress"):
        return progress_connection(job_id, model)
    return None, None


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued import job. Safe to run twice: a job that is not queued is left as it is.

    Effects: the job row ends ``succeeded`` (counts filled) or ``failed`` (errors and the reason
    filled, nothing imported unless the job skips invalid records), whatever the exception
    (conversations/jobs.py). No exception escapes.
    """
    return job_run(ImportJob, job_id, _import_job_work)


def _import_job_work(job: ImportJob) -> None:
    write, side = import_progress_writer(job.pk)
    rejects = ContentFile(b"") if job.skip_invalid else None
    try:
        with job.file.open("rb") as stream:
            summary = transcript_import(
                project=job.project,
                stream=stream,
                source_name=job.original_name,
                fmt=job.format or None,
                skip_invalid=job.skip_invalid,
                rejects=rejects,
                import_job_id=job.pk,
                author_id=None,
                progress=write,
            )
        failure = ""
    except ImportFailed as exc:
        summary, failure = exc.summary, str(exc).splitlines()[0]
    finally:
        if side is not None:
            side.close()
    job.refresh_from_db()
    job.state = JobState.FAILED if failure else JobState.SUCCEEDED
    job.failure = failure
    job.format = summary.format or job.format
    job.records_read = summary.records_read
    job.imported = summary.imported
    job.duplicates = summary.duplicates
    job.rejected = summary.rejected
    job.bytes_read = summary.bytes_read
    job.errors = [e.as_dict() for e in summary.errors]
    job.finished_at = timezone.now()
    if rejects is not None and summary.rejected:
        job.rejects_file.save(f"{job.pk}-rejects.jsonl", rejects, save=False)
    job.save()
