from celery import shared_task
from django.db import OperationalError


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def quality_refresh(project_id: int, trigger: str = "schedule") -> None:
    """Compute one project's quality figures (skipped when nothing changed)."""
    from ratings.services.quality import quality_compute

    quality_compute(project_id=project_id, trigger=trigger)


@shared_task
def quality_refresh_all() -> None:
    """The periodic entry point: one task per project that has judgments."""
    from conversations.models import Project

    for project_id in (
        Project.objects.filter(items__judgments__isnull=False)
        .values_list("id", flat=True)
        .distinct()
    ):
        quality_refresh.delay(project_id, "schedule")


@shared_task
def leases_expire_all() -> None:
    """Return expired leases to the pool everywhere (raters asking for work also do it)."""
    from conversations.models import Project
    from ratings.services.assignments import leases_expire

    for project in Project.objects.all():
        leases_expire(project=project)


@shared_task
def judgment_import_job(job_id: int) -> None:
    """Import an uploaded file of judgments (ratings.services.judgment_import.jobs)."""
    from ratings.services.judgment_import.jobs import judgment_import_job_run

    judgment_import_job_run(job_id=job_id)
