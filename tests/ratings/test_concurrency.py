"""Many raters at once on PostgreSQL: every item ends with exactly `overlap` distinct raters."""

import threading
from collections import Counter

import pytest
from django.db import connection

from conversations.models import Role
from ratings.models import Item, Judgment, TaskKind
from ratings.services.assignments import assignment_next
from ratings.services.items import items_queue
from ratings.services.judgments import judgment_submit
from tests.factories import pairwise_conversation


@pytest.mark.django_db(transaction=True)
def test_parallel_raters_fill_every_item_exactly_to_overlap(project, lead, member):
    project.has_scoring = False
    project.overlap = 3
    project.gold_rate = 0
    project.save()
    for i in range(25):
        pairwise_conversation(project, n_candidates=3, external_id=f"c{i}")  # 3 pairs each
    items_queue(project=project, user=lead)
    n_items = Item.objects.filter(project=project).count()
    assert n_items == 75
    raters = [member(Role.EVALUATOR) for _ in range(12)]
    submitted: Counter = Counter()
    errors: list[BaseException] = []
    start = threading.Barrier(len(raters))

    def work(rater):
        try:
            start.wait()
            while (
                a := assignment_next(project=project, rater=rater, kind=TaskKind.PAIRWISE)
            ) is not None:
                judgment_submit(assignment=a, rater=rater, answer={"choice": "tie"})
                submitted[rater.pk] += 1
        except BaseException as exc:  # reported below, with the rater
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sum(submitted.values()) == n_items * 3 == Judgment.objects.count()
    per_item = Counter(Judgment.objects.values_list("item_id", flat=True))
    assert set(per_item.values()) == {3}
    pairs = list(Judgment.objects.values_list("item_id", "rater_id"))
    assert len(pairs) == len(set(pairs))
    assert len([r for r in raters if submitted[r.pk]]) > 1  # the work was really shared
    assert Item.objects.filter(project=project, n_done=3, n_active=3).count() == n_items
