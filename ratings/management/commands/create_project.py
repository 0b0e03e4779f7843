"""python manage.py create_project --spec FILE.json|yaml [--update]: a reproducible campaign."""

import json
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ratings.services.projects import project_create_from_spec


class Command(BaseCommand):
    help = "Create a project (settings, task types, rubric, members) from a JSON or YAML spec."

    def add_arguments(self, parser):
        parser.add_argument("--spec", type=Path, required=True)
        parser.add_argument("--update", action="store_true", help="Update an existing project.")

    def handle(self, *args, spec: Path, update: bool, **options):
        if not spec.is_file():
            raise CommandError(f"{spec}: no such file")
        text = spec.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if spec.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise CommandError(
                f"{spec}: not valid {'JSON' if spec.suffix == '.json' else 'YAML'}: {exc}"
            ) from None
        try:
            project, log = project_create_from_spec(spec=data, base_dir=spec.parent, update=update)
        except ValidationError as exc:
            detail = (
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                if hasattr(exc, "error_dict")
                else " ".join(exc.messages)
            )
            raise CommandError(f"{spec}: {detail}") from None
        for line in log:
            self.stdout.write(line)
        self.stdout.write(f"project {project.slug} ready")
