"""python manage.py import_judgments PATH --project SLUG [--skip-invalid] [--rejects FILE]
    [--count-for-quality]
python manage.py import_judgments --from-source-ranks --project SLUG

Imports judgments made elsewhere (JSONL, docs/formats.md), or turns the imported sources' own
rankings of candidates into external pairwise judgments. Runs in-process; prints a summary."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from conversations.models import Project
from ratings.services.judgment_import import (
    JudgmentImportFailed,
    JudgmentImportSummary,
    judgment_import,
    source_ranks_import,
)


class Command(BaseCommand):
    help = "Import judgments made elsewhere (JSONL; gzip accepted), or the sources' rankings."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, nargs="?")
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument(
            "--from-source-ranks",
            action="store_true",
            help="Make pairwise judgments from the candidates' source ranks instead of a file.",
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid records and write the bad ones to a rejects file.",
        )
        parser.add_argument(
            "--rejects", type=Path, help="Where to write rejects (default: PATH.rejects.jsonl)."
        )
        parser.add_argument(
            "--count-for-quality",
            action="store_true",
            help="The raters are the team's own: the judgments count for agreement, rater "
            "quality, gold accuracy and drift like judgments made here.",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, path: Path | None, project: str, from_source_ranks: bool, **options):
        project_obj = Project.objects.filter(slug=project).first()
        if project_obj is None:
            raise CommandError(f"unknown project {project!r}")
        if from_source_ranks:
            if path is not None:
                raise CommandError("give a PATH or --from-source-ranks, not both")
            try:
                summary = source_ranks_import(project=project_obj)
            except JudgmentImportFailed as exc:
                raise CommandError(str(exc)) from None
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
            self.report("source ranks", summary, None)
            return
        if path is None:
            raise CommandError("give the PATH of a JSONL file, or --from-source-ranks")
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        skip_invalid = options["skip_invalid"]
        rejects_path = options["rejects"] or path.with_name(path.name + ".rejects.jsonl")
        bar = tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=path.name,
            disable=options["no_progress"] or options["verbosity"] == 0,
            file=self.stderr._out,
        )

        def progress(summary: JudgmentImportSummary) -> None:
            bar.update(summary.bytes_read - bar.n)

        rejects = rejects_path.open("wb") if skip_invalid else None
        try:
            with path.open("rb") as stream:
                summary = judgment_import(
                    project=project_obj,
                    stream=stream,
                    source_name=path.name,
                    skip_invalid=skip_invalid,
                    rejects=rejects,
                    progress=progress,
                    count_for_quality=options["count_for_quality"],
                )
        except JudgmentImportFailed as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
            if rejects is not None:
                rejects.close()
        self.report(path.name, summary, rejects_path if skip_invalid else None)

    def report(self, name: str, summary: JudgmentImportSummary, rejects_path: Path | None):
        self.stdout.write(
            f"{name}: read {summary.records_read} records, imported {summary.imported}, "
            f"duplicates {summary.duplicates}, rejected {summary.rejected} "
            f"(conflicts {summary.conflicts}); superseded {summary.superseded}, "
            f"new items {summary.items_created}, new raters {summary.raters_created}"
        )
        if summary.rejected:
            for issue in summary.errors[:20]:
                self.stderr.write(f"  {issue}")
            if rejects_path is not None:
                self.stderr.write(f"rejected records written to {rejects_path}")
        elif rejects_path is not None:
            rejects_path.unlink(missing_ok=True)
