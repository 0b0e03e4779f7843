"""python manage.py compute_quality --project SLUG [--force]: the same code the worker runs."""

from django.core.management.base import BaseCommand, CommandError

from conversations.models import Project
from ratings.services.quality import quality_compute


class Command(BaseCommand):
    help = "Compute agreement, per-rater quality and drift flags for a project now."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--force", action="store_true", help="Run even if nothing changed.")
        parser.add_argument("--bootstrap", type=int, default=None, help="Bootstrap resamples.")

    def handle(self, *args, project: str, force: bool, bootstrap: int | None, **options):
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"unknown project {project!r}")
        run = quality_compute(project_id=found.pk, trigger="command", force=force, n_boot=bootstrap)
        self.stdout.write(
            f"run {run.pk} ({run.state}): {run.n_judgments} judgments, "
            f"{run.agreements.count()} agreement figures, {run.rater_rows.count()} raters, "
            f"{run.flags.count()} flags, {run.duration_ms} ms {run.timings}"
        )
