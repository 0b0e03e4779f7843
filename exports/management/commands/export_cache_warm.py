"""python manage.py export_cache_warm [--project SLUG ...]

Encodes the text of every pair the export cache misses (exports/accel/warm.py), in-process:
what the ``export_cache_warm`` task does when pairs are queued. For a machine whose cache
folder is new or was deleted, or a project queued while ``RATELOOP_EXPORT_CACHE_WARM`` was off.
Without --project, every project that has pairwise items."""

from django.core.management.base import BaseCommand, CommandError

from config import accel
from conversations.models import Project
from exports.accel.warm import project_ids_with_pairs, warm_cache


class Command(BaseCommand):
    help = "Encode the text of every pair the export cache misses (PostgreSQL only)."

    def add_arguments(self, parser):
        parser.add_argument("--project", action="append", default=[], metavar="SLUG")

    def handle(self, *args, project: list[str], **options):
        if not accel.enabled("export_cache"):
            raise CommandError("the export cache is off (RATELOOP_ACCEL) or not PostgreSQL")
        if project:
            found = {p.slug: p for p in Project.objects.filter(slug__in=project)}
            missing = [slug for slug in project if slug not in found]
            if missing:
                raise CommandError(f"no project with slug {', '.join(missing)}")
            projects = [found[slug] for slug in project]
        else:
            projects = list(
                Project.objects.filter(pk__in=project_ids_with_pairs()).order_by("slug")
            )
        for p in projects:
            r = warm_cache(p.pk)
            self.stdout.write(
                f"{p.slug}: {r['pairs']:,} pairs; encoded {r['encoded_json']:,} as JSON and "
                f"{r['encoded_text']:,} as text in {r['seconds']:.2f} s"
            )
