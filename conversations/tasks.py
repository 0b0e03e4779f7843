from celery import shared_task
from django.db import OperationalError


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def transcript_import_job(job_id: int) -> None:
    from conversations.services.import_jobs import import_job_run

    import_job_run(job_id=job_id)


@shared_task
def jobs_sweep() -> int:
    """The periodic entry point: fail the jobs whose worker stopped (conversations/jobs.py)."""
    from conversations.jobs import jobs_sweep as sweep

    return sweep()
