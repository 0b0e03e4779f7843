import pytest

from conversations.models import Role
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
