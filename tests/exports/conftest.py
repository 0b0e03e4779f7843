from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Role
from ratings.models import Item, Judgment, Score, TaskKind
from ratings.services.items import items_queue
from ratings.services.rubrics import rubric_set
from tests.factories import pairwise_conversation


def vote(
    item,
    rater,
    preference,
    *,
    both_bad=False,
    left_is_a=True,
    minutes=0,
    external=False,
    rubric=None,
):
    return Judgment.objects.create(
        item=item,
        rater=rater,
        preference=preference,
        both_bad=both_bad,
        left_is_a=left_is_a,
        created_at=timezone.now() - timedelta(days=1) + timedelta(minutes=minutes),
        is_external=external,
        rubric=rubric,
    )


@pytest.fixture
def exportable(project, lead, member):
    """6 pairs with known votes, 2 scored responses, 3 raters.

    pair 0: A, A, B  -> A (agreement 2/3)      pair 1: B, B, B -> B (unanimous, strong)
    pair 2: A, B, tie -> tie (dropped)          pair 3: A, A, A but all say both bad
    pair 4: B (one vote)                        pair 5: A much better, A, tie -> A
    """
    rubric = rubric_set(
        project=project,
        user=lead,
        criteria=[
            {"key": "helpfulness", "points": 5, "anchors": ["Poor", "Excellent"]},
            {"key": "safe", "scale": "binary"},
        ],
    )
    for i in range(6):
        pairwise_conversation(project, external_id=f"c{i}")
    items_queue(project=project, user=lead)
    raters = [member(Role.EVALUATOR, username=f"r{i}") for i in range(3)]
    pairs = list(Item.objects.filter(project=project, kind=TaskKind.PAIRWISE).order_by("id"))
    plan = [[-1, -1, 1], [2, 2, 1], [-1, 1, 0], [-1, -1, -1], [1], [-2, -1, 0]]
    for item, prefs in zip(pairs, plan, strict=True):
        for r, pref in enumerate(prefs):
            vote(item, raters[r], pref, both_bad=item == pairs[3], minutes=r, rubric=rubric)
    crit = {c.key: c for c in rubric.criteria.all()}
    scored = list(Item.objects.filter(project=project, kind=TaskKind.SCORE).order_by("id")[:2])
    for item, values in zip(scored, [[5, 4, 5], [1, 2, 1]], strict=True):
        for r, value in enumerate(values):
            j = vote(item, raters[r], None, rubric=rubric)
            Score.objects.create(judgment=j, criterion=crit["helpfulness"], value=value)
            Score.objects.create(judgment=j, criterion=crit["safe"], value=1)
    return project, raters, pairs


@pytest.fixture(autouse=True)
def export_cache_dir(settings, tmp_path_factory):
    """The fast export's text cache in a folder of this test's own."""
    settings.EXPORT_CACHE_DIR = str(tmp_path_factory.mktemp("export-cache"))
