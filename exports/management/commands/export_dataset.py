"""python manage.py export_dataset --project SLUG --format FORMAT --out PATH [filters]

Runs the same export code as the worker, in-process, with a progress bar. The file type
follows the extension of --out (.jsonl, .parquet, .csv, each optionally .gz)."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from conversations.models import Project
from exports.exporters import REGISTRY
from exports.pipeline import run_export
from exports.services import options_from_dict
from exports.writers import file_type_of


class Command(BaseCommand):
    help = "Export a dataset (preference pairs, KTO, rubric scores) from a project."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--format", required=True, choices=list(REGISTRY))
        parser.add_argument("--out", required=True, type=Path)
        parser.add_argument(
            "--aggregation",
            default="majority",
            choices=["majority", "mean", "dawid-skene", "weighted"],
        )
        parser.add_argument("--min-raters", type=int, default=1)
        parser.add_argument("--min-agreement", type=float, default=0.0)
        parser.add_argument("--both-bad", choices=["drop", "keep"], default="drop")
        parser.add_argument("--exclude-gold", action="store_true")
        parser.add_argument("--exclude-external", action="store_true")
        parser.add_argument("--exclude-flagged-raters", action="store_true")
        parser.add_argument("--date-from")
        parser.add_argument("--date-to")
        parser.add_argument("--source")
        parser.add_argument("--model")
        parser.add_argument("--test-fraction", type=float, default=0.0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--no-margin", action="store_true", help="trl-implicit: leave out the margin column"
        )
        parser.add_argument("--kto-source", choices=["scores", "kb", "pairwise"], default="scores")
        parser.add_argument("--kto-criterion")
        parser.add_argument(
            "--reveal-raters", action="store_true", help="Real user names instead of pseudonyms."
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **o):
        project = Project.objects.filter(slug=o["project"]).first()
        if project is None:
            raise CommandError(f"unknown project {o['project']!r}")
        out: Path = o["out"]
        try:
            file_type, compress = file_type_of(out)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        values = {
            "aggregation": o["aggregation"],
            "min_raters": o["min_raters"],
            "min_agreement": o["min_agreement"],
            "both_bad": o["both_bad"],
            "exclude_gold": o["exclude_gold"],
            "include_external": not o["exclude_external"],
            "exclude_flagged_raters": o["exclude_flagged_raters"],
            "date_from": o["date_from"],
            "date_to": o["date_to"],
            "source": o["source"],
            "model": o["model"],
            "test_fraction": o["test_fraction"],
            "seed": o["seed"],
            "margin": not o["no_margin"],
            "kto_source": o["kto_source"],
            "kto_criterion": o["kto_criterion"],
            "reveal_raters": o["reveal_raters"],
        }
        try:
            options = options_from_dict(
                fmt=o["format"], file_type=file_type, compress=compress, values=values
            )
        except ValidationError as exc:
            raise CommandError("; ".join(" ".join(v) for v in exc.message_dict.values())) from None
        base = out.name.removesuffix(".gz").rsplit(".", 1)[0]
        bar = tqdm(total=0, unit="rec", disable=o["no_progress"], file=self.stderr._out)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = run_export(
                project=project,
                options=options,
                out_dir=out.parent.resolve(),
                base_name=base,
                created_by="export_dataset",
                progress=progress,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        for f in result.files:
            self.stdout.write(f"{out.parent / f.name}: {f.rows} rows, sha256 {f.sha256}")
        self.stdout.write(
            f"manifest: {result.manifest_path}; dropped: {result.counts['dropped'] or 'none'}"
        )
