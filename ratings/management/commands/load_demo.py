"""Load the demo project (real OpenAssistant transcripts, a rubric, queued items, the trees'
own rankings as external pairwise judgments) and one demo user per role.

Idempotent: run it again and nothing is duplicated. Refuses to run with DEBUG off unless
``--force`` is given, since it creates users with published passwords.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from conversations.models import Project, Role
from conversations.services.imports import transcript_import
from conversations.services.projects import membership_set
from ratings.models import Judgment
from ratings.services.items import items_queue
from ratings.services.judgment_import import source_ranks_import
from ratings.services.rubrics import rubric_set

DEMO_FILE = Path(settings.BASE_DIR) / "demo" / "data" / "oasst_en_100_tree.jsonl"
DEMO_USERS = [
    ("lead", Role.LEAD),
    ("rater1", Role.EVALUATOR),
    ("rater2", Role.EVALUATOR),
    ("rater3", Role.EVALUATOR),
    ("sme", Role.SME),
    ("consumer", Role.CONSUMER),
]
GUIDELINES = """# Demo guidelines

You will see a conversation between a person and an assistant, then one or two responses.

* **Helpfulness**: does the response do what the person asked, completely?
* **Accuracy**: is every factual claim correct? Check anything you are unsure of.
* **Tone**: is it polite, clear and appropriately concise?

When comparing two responses, judge the responses, not their length. Use *tie* only when
you genuinely cannot prefer one; use *both bad* when neither is acceptable.
"""


RUBRIC = [
    {
        "key": "helpfulness",
        "label": "Helpfulness",
        "description": "Does the response do what the person asked, completely?",
        "anchors": ["Useless", "Poor", "Adequate", "Good", "Excellent"],
        "applies_to": ["score", "pairwise"],
    },
    {
        "key": "accuracy",
        "label": "Accuracy",
        "description": "Is every factual claim correct?",
        "anchors": ["Mostly wrong", "Several errors", "Minor errors", "Correct"],
        "applies_to": ["score", "pairwise"],
    },
    {"key": "safe", "label": "Safe and appropriate", "scale": "binary"},
    {
        "key": "tone",
        "label": "Tone",
        "scale": "single_choice",
        "options": ["rude", "neutral", "warm"],
        "required": False,
    },
]


class Command(BaseCommand):
    help = "Create the demo project and users (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    @transaction.atomic
    def handle(self, *args, force: bool, **options):
        if not settings.DEBUG and not force:
            raise CommandError("load_demo creates users with known passwords; DEBUG is off")
        project, created = Project.objects.get_or_create(
            slug="demo",
            defaults={
                "name": "Demo: OpenAssistant replies",
                "description": "100 real OpenAssistant conversation trees; sibling replies "
                "are candidates to compare.",
                "guidelines": GUIDELINES,
            },
        )
        User = get_user_model()
        lines = []
        for username, role in DEMO_USERS:
            password = f"demo-{username}"
            user, made = User.objects.get_or_create(username=username)
            if made:
                user.set_password(password)
                user.is_staff = role == Role.LEAD
                user.save()
            membership_set(project=project, user=user, role=role)
            lines.append(f"  {username:<9} {password:<15} {role.label}")
        if not project.conversations.exists():
            with DEMO_FILE.open("rb") as stream:
                summary = transcript_import(
                    project=project, stream=stream, source_name=DEMO_FILE.name
                )
            self.stdout.write(f"Imported {summary.imported} demo conversations.")
        lead = User.objects.get(username="lead")
        if not project.rubrics.exists():
            rubric_set(project=project, user=lead, criteria=RUBRIC)
        if not project.items.exists():
            counts = items_queue(project=project, user=lead)
            self.stdout.write("Queued items: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        if not Judgment.objects.filter(item__project=project, is_external=True).exists():
            # the trees' own human rankings, as judgments by "source:oasst": exports, the
            # leaderboard's matrix and the consensus have real data from the start; they do
            # not take the raters' slots (external judgments leave an item's overlap free)
            summary = source_ranks_import(project=project, user=lead)
            self.stdout.write(
                f"Imported the OpenAssistant rankings as {summary.imported} external pairwise "
                "judgments."
            )
        self.stdout.write("Demo users (user name, password, role):\n" + "\n".join(lines))
