"""python manage.py import_transcripts PATH --project SLUG [--create-project] [--format F]
[--skip-invalid] [--rejects FILE]: runs in-process with a progress bar and a summary."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from conversations.models import Project, SourceFormat
from conversations.services.imports import ImportFailed, transcript_import
from conversations.services.projects import project_get_or_create_for_import


class Command(BaseCommand):
    help = "Import chatbot transcripts (JSONL, CSV; gzip accepted) into a project."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument(
            "--create-project", action="store_true", help="Create the project if it is unknown."
        )
        parser.add_argument(
            "--format", choices=SourceFormat.values, help="Override format detection."
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid records and write the bad ones to a rejects file.",
        )
        parser.add_argument(
            "--rejects", type=Path, help="Where to write rejects (default: PATH.rejects.jsonl)."
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, path: Path, project: str, create_project: bool, **options):
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        if create_project:
            project_obj = project_get_or_create_for_import(slug=project)
        else:
            project_obj = Project.objects.filter(slug=project).first()
            if project_obj is None:
                raise CommandError(
                    f"unknown project {project!r}; create it first or pass --create-project"
                )
        skip_invalid = options["skip_invalid"]
        rejects_path = options["rejects"] or path.with_name(path.name + ".rejects.jsonl")
        size = path.stat().st_size
        bar = tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=path.name,
            disable=options["no_progress"] or options["verbosity"] == 0,
            file=self.stderr._out,
        )

        def progress(summary):
            bar.update(summary.bytes_read - bar.n)

        rejects = rejects_path.open("wb") if skip_invalid else None
        try:
            with path.open("rb") as stream:
                summary = transcript_import(
                    project=project_obj,
                    stream=stream,
                    source_name=path.name,
                    fmt=options["format"],
                    skip_invalid=skip_invalid,
                    rejects=rejects,
                    progress=progress,
                )
        except ImportFailed as exc:
            bar.close()
            hint = (
                f"\nname the format with --format ({', '.join(SourceFormat.values)})"
                if exc.summary.format_undetected
                else ""
            )
            raise CommandError(f"{exc}{hint}") from None
        finally:
            if rejects is not None:
                rejects.close()
        bar.close()
        self.stdout.write(
            f"{path.name} ({summary.format}): read {summary.records_read} records "
            f"({summary.conversations_read} conversations), imported {summary.imported}, "
            f"duplicates {summary.duplicates}, rejected {summary.rejected} "
            f"(conflicts {summary.conflicts})"
        )
        if summary.rejected:
            for issue in summary.errors[:20]:
                self.stderr.write(f"  {issue}")
            self.stderr.write(f"rejected records written to {rejects_path}")
        elif rejects is not None:
            rejects_path.unlink(missing_ok=True)
