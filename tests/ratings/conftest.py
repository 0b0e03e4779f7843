from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from conversations.models import Role
from ratings.models import Item, Judgment, Score, TaskKind
from ratings.services.items import items_queue
from ratings.services.rubrics import rubric_set
from tests.factories import pairwise_conversation

RUBRIC = [
    {
        "key": "helpfulness",
        "label": "Helpfulness",
        "scale": "likert",
        "anchors": ["Useless", "Poor", "Adequate", "Good", "Excellent"],
        "applies_to": ["score", "pairwise"],
    },
    {"key": "accuracy", "label": "Accuracy", "scale": "binary"},
    {
        "key": "tone",
        "label": "Tone",
        "scale": "single_choice",
        "options": ["rude", "neutral", "warm"],
        "required": False,
    },
    {"key": "notes", "label": "Notes", "scale": "free_text", "required": False},
]


@pytest.fixture
def rated_project(project, lead):
    """A project with a rubric, 3-way overlap and items from 4 two-candidate conversations."""
    rubric_set(project=project, user=lead, criteria=RUBRIC)
    for i in range(4):
        pairwise_conversation(project, external_id=f"conv-{i}")
    items_queue(project=project, user=lead)
    return project


@pytest.fixture
def raters(member):
    return [member(Role.EVALUATOR) for _ in range(4)]


@pytest.fixture
def judged(project, lead, member):
    """30 conversations, 4 raters: rater 0-2 agree closely, rater 3 scores at random."""
    rubric = rubric_set(
        project=project,
        user=lead,
        criteria=[
            {
                "key": "helpfulness",
                "points": 5,
                "anchors": ["Poor", "Excellent"],
                "applies_to": ["score", "pairwise"],
            },
            {"key": "safe", "scale": "binary"},
        ],
    )
    for i in range(30):
        pairwise_conversation(project, external_id=f"c{i}")
    items_queue(project=project, user=lead)
    raters = [member(Role.EVALUATOR) for _ in range(4)]
    crit = {c.key: c for c in rubric.criteria.all()}
    rng = np.random.default_rng(7)
    start = timezone.now() - timedelta(days=3)
    judgments, scores = [], []
    for n, item in enumerate(Item.objects.filter(project=project).order_by("id")):
        truth = rng.integers(1, 6)
        for r, rater in enumerate(raters):
            j = Judgment(
                item=item,
                rater=rater,
                rubric=rubric,
                created_at=start + timedelta(minutes=n * 4 + r),
                time_on_task_ms=int(rng.integers(5000, 30000)),
            )
            if item.kind == TaskKind.PAIRWISE:
                j.preference = int(rng.integers(-2, 3)) if r == 3 else (-1 if truth > 2 else 1)
                j.left_is_a = bool(rng.integers(2))
            judgments.append((j, truth, r))
    Judgment.objects.bulk_create([j for j, _, _ in judgments])
    for j, truth, r in judgments:
        if j.item.kind == TaskKind.SCORE:
            value = (
                int(rng.integers(1, 6))
                if r == 3
                else int(np.clip(truth + rng.integers(-1, 2) * (rng.random() < 0.2), 1, 5))
            )
            scores.append(Score(judgment=j, criterion=crit["helpfulness"], value=value))
            scores.append(
                Score(
                    judgment=j,
                    criterion=crit["safe"],
                    value=1.0 if r != 3 else float(rng.integers(2)),
                )
            )
    Score.objects.bulk_create(scores)
    return project, raters
