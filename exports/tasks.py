from celery import shared_task
from django.db import OperationalError


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def export_job_run(job_id: int) -> None:
    from exports.services import export_job_run as run

    run(job_id=job_id)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def export_cache_warm(project_id: int) -> dict:
    from exports.accel.warm import warm_cache

    return warm_cache(project_id)


@shared_task
def export_cache_warm_all() -> None:
    """The periodic entry point: one warm per project that has pairwise items."""
    from exports.accel.warm import enabled, project_ids_with_pairs

    if not enabled():
        return
    for project_id in project_ids_with_pairs():
        export_cache_warm.delay(project_id)
