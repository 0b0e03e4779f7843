"""Judgment import jobs: an uploaded file of judgments, imported by a Celery worker, with its
progress and outcome in a ``JudgmentImportJob`` row (the transcript import's pattern, and its
life from conversations/jobs.py). No web request imports: the API and the page create the
job; ``manage.py import_judgments`` still imports in its own process."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.utils import timezone

from conversations.jobs import job_enqueue, job_run
from conversations.models import JobState, Project, Role
from conversations.services.access import require_role
from conversations.services.import_jobs import import_progress_writer, upload_size_check
from ratings.models import JudgmentImportJob
from ratings.services.judgment_import.records import JudgmentImportFailed
from ratings.services.judgment_import.service import judgment_import


@transaction.atomic
def judgment_import_job_create(
    *,
    project: Project,
    user: AbstractBaseUser,
    upload: File,
    skip_invalid: bool = False,
    count_for_quality: bool = False,
) -> JudgmentImportJob:
    """Store the upload and queue its import once committed. Leads only.

    Raises PermissionDenied for other roles and ``UploadTooLarge`` over the upload limit;
    ``BrokerUnavailable`` from the commit when the task cannot be queued (the job is then
    failed).
    """
    require_role(user=user, project=project, roles=(Role.LEAD,), action="importing judgments")
    upload_size_check(upload)
    name = (getattr(upload, "name", "") or "upload").rsplit("/", 1)[-1]
    job = JudgmentImportJob(
        project=project,
        created_by=user,
        original_name=name[:255],
        skip_invalid=skip_invalid,
        count_for_quality=count_for_quality,
        bytes_total=upload.size or 0,
    )
    job.file.save(name, upload, save=False)
    job.save()
    from ratings.tasks import judgment_import_job as judgment_import_job_task

    job_enqueue(job, judgment_import_job_task)
    return job


def judgment_import_job_run(*, job_id: int) -> JudgmentImportJob:
    """Run a queued judgment import job; a job that is not queued is left as it is.

    Effects: the job ends ``succeeded`` (counts filled) or ``failed`` (errors and the reason
    filled; nothing imported unless the job skips invalid records), whatever the exception.
    The lead's role was checked when the job was created.
    """
    return job_run(JudgmentImportJob, job_id, _work)


def _work(job: JudgmentImportJob) -> None:
    write, side = import_progress_writer(job.pk, JudgmentImportJob)
    rejects = ContentFile(b"") if job.skip_invalid else None
    try:
        with job.file.open("rb") as stream:
            summary = judgment_import(
                project=job.project,
                stream=stream,
                source_name=job.original_name,
                skip_invalid=job.skip_invalid,
                rejects=rejects,
                progress=write,
                count_for_quality=job.count_for_quality,
            )
        failure = ""
    except JudgmentImportFailed as exc:
        summary, failure = exc.summary, str(exc).splitlines()[0]
    finally:
        if side is not None:
            side.close()
    job.refresh_from_db()
    job.state = JobState.FAILED if failure else JobState.SUCCEEDED
    job.failure = failure
    for name in (
        "records_read",
        "imported",
        "duplicates",
        "rejected",
        "conflicts",
        "superseded",
        "items_created",
        "raters_created",
        "bytes_read",
    ):
        setattr(job, name, getattr(summary, name))
    job.errors = [e.as_dict() for e in summary.errors]
    job.finished_at = timezone.now()
    if rejects is not None and summary.rejected:
        job.rejects_file.save(f"{job.pk}-rejects.jsonl", rejects, save=False)
    job.save()
