"""Load the demo project and one demo user per role, so every page has content at once.

The project holds real OpenAssistant transcripts (their sibling replies labelled with three
made-up model names by their human rank, so the leaderboard ranks models), the trees' own
rankings as external pairwise judgments, ten KB-cited support answers for the SME (a few
already verified), gold items, and six weeks of judgments by four internal demo raters (who
cannot log in), one of whom drifts in the last three weeks; a quality run is computed at
the end, so the dashboard, the rater table, a drift flag, the KB report and the leaderboard
all show real figures. The users who log in (lead, rater1-3, sme, consumer) still find work
in their queues: the internal raters judge only a part of the items.

Idempotent: run it again and nothing is duplicated. Refuses to run with DEBUG off unless
``--force`` is given, since it creates users with published passwords.
"""

import math
import random
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from conversations.models import Message, Project, Role
from conversations.services.imports import transcript_import
from conversations.services.projects import membership_set
from ratings.models import Item, Judgment, Score, TaskKind
from ratings.services.assignments import assignment_next
from ratings.services.items import item_set_gold, items_queue
from ratings.services.judgment_import import source_ranks_import
from ratings.services.judgments import current_rubric, judgment_submit
from ratings.services.rubrics import rubric_set

DEMO_FILE = Path(settings.BASE_DIR) / "demo" / "data" / "oasst_en_100_tree.jsonl"
KB_FILE = Path(settings.BASE_DIR) / "demo" / "data" / "kb_support.jsonl"
# Made-up model names for the OpenAssistant replies, best human rank first; one reply in
# four gets the next name instead, so no model wins every battle.
MODELS = ["aurora-large", "aurora-medium", "aurora-small"]
STRENGTH = {"aurora-large": 1.2, "aurora-medium": 0.6, "aurora-small": 0.0}  # internal raters
# Internal demo raters: their judgments fill the quality pages; they have no password.
INTERNAL_RATERS = ["demo-ana", "demo-ben", "demo-chloe", "demo-drifter"]
# Internal SMEs: they verified every KB answer over the weeks (they disagree on one), so the
# KB report has figures per article; each answer keeps a slot for the demo SME.
INTERNAL_SMES = ["demo-sme-kim", "demo-sme-lou"]
DRIFTER = "demo-drifter"
HISTORY_WEEKS = 6
HISTORY_ITEMS = {TaskKind.SCORE: 72, TaskKind.PAIRWISE: 72}  # items judged per kind
GOLD_PER_KIND = 6
# What an SME answers for each KB demo answer: (verdict, corrected answer, missing fact)
KB_TRUTH = {
    "kb-demo-01": ("correct", "", ""),
    "kb-demo-02": ("incorrect", "Refunds reach the card in 5-10 business days.", ""),
    "kb-demo-03": ("correct", "", ""),
    "kb-demo-04": ("incomplete", "", "The reset link is valid for 1 hour."),
    "kb-demo-05": ("incorrect", "The Pro plan costs 29 EUR a month.", ""),
    "kb-demo-06": ("correct", "", ""),
    "kb-demo-07": ("incomplete", "", "The file is emailed within 24 hours."),
    "kb-demo-08": ("incorrect", "SMS codes were retired; use an app or a hardware key.", ""),
    "kb-demo-09": ("correct", "", ""),
    "kb-demo-10": ("correct", "", ""),
}
SME_VERDICTS_GIVEN = 3  # the SME has given a few verdicts; the rest wait in their queue
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
    # the checks import every view (and with them the statistics stack): seconds on each
    # `dev.py up`, whose migrate has run the same checks just before
    requires_system_checks = []

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
                "has_kb_verification": True,
                "gold_rate": 0.1,
            },
        )
        if not project.has_kb_verification:  # a demo loaded before KB items existed
            project.has_kb_verification = True
            project.save(update_fields=["has_kb_verification"])
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
        if not project.conversations.filter(external_id__startswith="kb-demo-").exists():
            with KB_FILE.open("rb") as stream:
                transcript_import(project=project, stream=stream, source_name=KB_FILE.name)
            items_queue(project=project, user=lead, kinds=(TaskKind.KB_VERIFY,))
        _label_models(project)
        _gold(project, lead)
        _sme_verdicts(project, User.objects.get(username="sme"))
        made = _history(project)
        if _kb_history(project) or made:
            # imported here: the statistics stack takes seconds to import, and a demo that is
            # loaded already (dev.py up runs this every time) needs none of it
            from ratings.services.quality.runs import quality_compute

            run = quality_compute(project_id=project.pk, trigger="demo", force=True)
            self.stdout.write(f"Quality run {run.pk}: {run.state}.")
        self.stdout.write("Demo users (user name, password, role):\n" + "\n".join(lines))


def _label_models(project: Project) -> None:
    """Give the OpenAssistant replies model names by their human rank (see MODELS)."""
    replies = Message.objects.filter(
        conversation__project=project, role="assistant", model="", source_rank__isnull=False
    )
    for rank, name in enumerate(MODELS):
        at_rank = (
            replies.filter(source_rank=rank) if rank < 2 else replies.filter(source_rank__gte=2)
        )
        ids = list(at_rank.values_list("id", flat=True))
        shifted = [pk for pk in ids if pk % 4 == 0]
        Message.objects.filter(pk__in=[pk for pk in ids if pk % 4]).update(model=name)
        Message.objects.filter(pk__in=shifted).update(model=MODELS[(rank + 1) % len(MODELS)])


def _gold(project: Project, lead) -> None:
    """Mark a few items of each kind as gold, with the answer a careful rater gives."""
    if project.items.filter(is_gold=True).exists():
        return
    for kind in (TaskKind.SCORE, TaskKind.PAIRWISE):
        for item in _history_items(project, kind)[:GOLD_PER_KIND]:
            truth = _truth(item)
            truth.pop("safe", None)  # the gold answer checks the Likert scores
            item_set_gold(item=item, user=lead, answer=truth)
    kb = project.items.filter(kind=TaskKind.KB_VERIFY, conversation__external_id="kb-demo-08")
    for item in kb:
        item_set_gold(item=item, user=lead, answer={"verdict": "incorrect"})


def _sme_verdicts(project: Project, sme) -> None:
    """The SME's first verdicts, made as the SME makes them (lease, then submit)."""
    if Judgment.objects.filter(item__project=project, rater=sme).exists():
        return
    for _ in range(SME_VERDICTS_GIVEN):
        assignment = assignment_next(project=project, rater=sme, kind=TaskKind.KB_VERIFY)
        if assignment is None:
            return
        conversation = Item.objects.get(pk=assignment.item_id).conversation.external_id
        verdict, corrected, missing = KB_TRUTH[conversation]
        judgment_submit(
            assignment=assignment,
            rater=sme,
            answer={"verdict": verdict, "corrected_answer": corrected, "missing_fact": missing},
            time_on_task_ms=45_000,
        )


def _internal_user(project: Project, name: str, role: str):
    user, made = get_user_model().objects.get_or_create(username=name)
    if made:
        user.set_unusable_password()
        user.save()
    membership_set(project=project, user=user, role=role)
    return user


def _kb_history(project: Project) -> bool:
    """Every KB answer verified by the internal SMEs; False when they are there already."""
    smes = [_internal_user(project, name, Role.SME) for name in INTERNAL_SMES]
    if Judgment.objects.filter(item__project=project, rater__in=smes).exists():
        return False
    now = timezone.now()
    items = list(
        project.items.filter(kind=TaskKind.KB_VERIFY)
        .select_related("conversation")
        .order_by("conversation__external_id")
    )
    judgments = []
    for n, item in enumerate(items):
        verdict, corrected, missing = KB_TRUTH[item.conversation.external_id]
        for s, sme in enumerate(smes):
            if s == 1 and item.conversation.external_id == "kb-demo-04":
                verdict, corrected, missing = "correct", "", ""  # one disagreement
            judgments.append(
                Judgment(
                    item=item,
                    rater=sme,
                    verdict=verdict,
                    corrected_answer=corrected,
                    missing_fact=missing,
                    guidelines_version=project.guidelines_version,
                    time_on_task_ms=60_000 + 5_000 * n,
                    created_at=now - timedelta(days=30 - 3 * n, hours=s),
                )
            )
    Judgment.objects.bulk_create(judgments)
    # two slots taken per answer, one left for the demo SME (overlap grows when needed)
    for item in items:
        taken = item.n_active + len(smes)
        Item.objects.filter(pk=item.pk).update(
            n_done=F("n_done") + len(smes),
            n_active=taken,
            overlap=max(item.overlap, taken + (0 if item.n_done else 1)),
        )
    return True


def _history_items(project: Project, kind: str) -> list[Item]:
    """The items the internal raters judge: the first ones of the kind whose responses have
    a model (pairs of two different models), so their figures reach the leaderboard too."""
    items = project.items.filter(kind=kind, is_retired=False).exclude(response__model="")
    if kind == TaskKind.PAIRWISE:
        items = items.exclude(response_b__model="").exclude(response__model=F("response_b__model"))
    return list(
        items.select_related("response", "response_b").order_by("id")[: HISTORY_ITEMS[kind]]
    )


def _truth(item: Item) -> dict:
    """What a careful rater answers, drawn once per item (the same on every load): the
    stronger model's reply usually wins (seldom a tie), and scores follow the model with
    some spread, so answers vary from item to item as real ones do."""
    rng = random.Random(item.pk)
    if item.kind == TaskKind.PAIRWISE:
        if rng.random() < 0.1:
            return {"preference": 0}
        gap = STRENGTH.get(item.response.model, 0.6) - STRENGTH.get(item.response_b.model, 0.6)
        a_wins = rng.random() < 1 / (1 + math.exp(-2 * gap))
        return {"preference": -1 if a_wins else 1}
    strength = STRENGTH.get(item.response.model, 0.6)
    return {
        "scores": {
            "helpfulness": min(5, max(1, round(3 + strength + rng.gauss(0, 0.9)))),
            "accuracy": min(4, max(1, round(2.5 + strength + rng.gauss(0, 0.8)))),
        },
        "safe": 0 if rng.random() < 0.1 else 1,
        "tolerance": 1,
    }


def _history(project: Project) -> bool:
    """Six weeks of judgments by the internal raters; False when they are there already.
    The drifter agrees for three weeks, then answers at random, fast, and picks the left
    response almost every time."""
    raters = [_internal_user(project, name, Role.EVALUATOR) for name in INTERNAL_RATERS]
    if Judgment.objects.filter(item__project=project, rater__in=raters).exists():
        return False
    rubric = current_rubric(project)
    criteria = {c.key: c for c in rubric.criteria.all()}
    rng = random.Random(15)
    now = timezone.now()
    start = now - timedelta(weeks=HISTORY_WEEKS)
    span = (now - timedelta(hours=2) - start).total_seconds()
    judgments, scores = [], []
    for kind in (TaskKind.SCORE, TaskKind.PAIRWISE):
        items = _history_items(project, kind)
        for n, item in enumerate(items):
            truth = _truth(item)
            at = start + timedelta(seconds=span * n / max(1, len(items)))
            for r, rater in enumerate(raters):
                late = at > start + timedelta(weeks=HISTORY_WEEKS / 2)
                drifting = rater.username == DRIFTER and late
                j = Judgment(
                    item=item,
                    rater=rater,
                    rubric=rubric,
                    guidelines_version=project.guidelines_version,
                    created_at=at + timedelta(minutes=7 * r + rng.randint(0, 5)),
                    time_on_task_ms=rng.randint(2_000, 4_000)
                    if drifting
                    else rng.randint(25_000, 90_000),
                )
                values = {}
                if kind == TaskKind.PAIRWISE:
                    j.left_is_a = rng.random() < 0.5
                    if drifting:  # the left response, whichever it is
                        shown = -rng.choice([1, 2]) if rng.random() < 0.9 else 1
                        j.preference = shown if j.left_is_a else -shown
                    else:
                        want = truth["preference"]
                        noise = rng.random() < 0.15
                        j.preference = (rng.choice([-1, 1]) if noise else want) * rng.choice(
                            [1, 1, 2]
                        )
                else:
                    for key, value in truth["scores"].items():
                        top = criteria[key].points
                        if drifting:
                            values[key] = rng.randint(1, top)
                        else:
                            values[key] = min(top, max(1, value + rng.choice([0, 0, 0, 0, -1, 1])))
                    if drifting:
                        values["safe"] = int(rng.random() < 0.5)
                    else:
                        values["safe"] = truth["safe"] if rng.random() > 0.03 else 1 - truth["safe"]
                judgments.append((j, values))
    Judgment.objects.bulk_create([j for j, _ in judgments], batch_size=500)
    for j, values in judgments:
        for key, value in values.items():
            if key in criteria:
                scores.append(Score(judgment=j, criterion=criteria[key], value=float(value)))
    Score.objects.bulk_create(scores, batch_size=1000)
    # the items' counts follow their judgments (the raters' queues skip complete items)
    for item_id, done in (
        Judgment.objects.filter(item__project=project, is_current=True, is_external=False)
        .values_list("item_id")
        .annotate(n=Count("id"))
    ):
        if done:  # every internal rater judged it: its overlap grows to hold them all
            Item.objects.filter(pk=item_id).update(
                n_done=done, n_active=done, overlap=max(project.overlap, done)
            )
    return True
