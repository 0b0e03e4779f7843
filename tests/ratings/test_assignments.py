"""The assignment engine: overlap as an invariant, order, leases, skips, refusals."""

import random
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import Role
from ratings.models import Assignment, AssignmentState, DriftFlag, Item, TaskKind
from ratings.services.assignments import assignment_next, assignment_skip
from ratings.services.items import items_queue
from ratings.services.judgments import judgment_submit
from tests.factories import pairwise_conversation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("accel_mode")]

SCORE_ANSWER = {"scores": {"helpfulness": 4, "accuracy": True}}
PAIR_ANSWER = {"choice": "left_better"}


def answer_for(assignment):
    return SCORE_ANSWER if assignment.item.kind == TaskKind.SCORE else PAIR_ANSWER


def drain(project, rater, kind=None):
    done = []
    while (a := assignment_next(project=project, rater=rater, kind=kind)) is not None:
        judgment_submit(assignment=a, rater=rater, answer=answer_for(a))
        done.append(a.item_id)
    return done


def test_each_item_gets_exactly_overlap_distinct_raters(rated_project, raters):
    for rater in raters:
        drain(rated_project, rater)
    items = Item.objects.filter(project=rated_project)
    assert items.count() == 4 * 3  # 2 score items and 1 pair per conversation
    for item in items:
        judges = list(item.judgments.values_list("rater_id", flat=True))
        assert len(judges) == len(set(judges)) == 3
        assert (item.n_done, item.n_active) == (3, 3)
    # the fourth rater found nothing left
    assert assignment_next(project=rated_project, rater=raters[0]) is None


def test_the_database_refuses_a_fourth_slot_and_a_second_assignment(rated_project, raters):
    item = Item.objects.filter(project=rated_project).first()
    Item.objects.filter(pk=item.pk).update(n_active=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(n_active=4)
    a = assignment_next(project=rated_project, rater=raters[0])
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            item=a.item,
            project=rated_project,
            rater=raters[0],
            leased_at=timezone.now(),
            lease_expires_at=timezone.now(),
        )


def test_live_lease_is_returned_again_until_submitted(rated_project, raters):
    first = assignment_next(project=rated_project, rater=raters[0])
    assert assignment_next(project=rated_project, rater=raters[0]).pk == first.pk


def test_started_items_come_before_fresh_ones_then_priority(rated_project, raters, lead):
    a = assignment_next(project=rated_project, rater=raters[0], kind=TaskKind.SCORE)
    judgment_submit(assignment=a, rater=raters[0], answer=SCORE_ANSWER)
    b = assignment_next(project=rated_project, rater=raters[1], kind=TaskKind.SCORE)
    assert b.item_id == a.item_id  # the started item first, so consensus accumulates
    top = (
        Item.objects.filter(project=rated_project, kind=TaskKind.SCORE, n_active=0)
        .order_by("-id")
        .first()
    )
    Item.objects.filter(pk=top.pk).update(priority=5)
    c = assignment_next(project=rated_project, rater=raters[2], kind=TaskKind.SCORE)
    assert c.item_id == a.item_id  # still started-first
    judgment_submit(assignment=c, rater=raters[2], answer=SCORE_ANSWER)
    d = assignment_next(project=rated_project, rater=raters[2], kind=TaskKind.SCORE)
    assert d.item_id == top.pk  # then priority


def test_expired_lease_returns_the_item_to_the_pool(rated_project, raters):
    rated_project.overlap = 1
    rated_project.save()
    Item.objects.filter(project=rated_project).update(overlap=1)
    a = assignment_next(project=rated_project, rater=raters[0], kind=TaskKind.PAIRWISE)
    with time_machine.travel(timezone.now() + timedelta(seconds=rated_project.lease_seconds + 5)):
        others = [
            assignment_next(project=rated_project, rater=r, kind=TaskKind.PAIRWISE)
            for r in raters[1:]
        ]
        assert a.item_id in [o.item_id for o in others if o]
        a.refresh_from_db()
        assert a.state == AssignmentState.EXPIRED
        # the slow rater's answer is refused: the item was filled by someone else
        holder = next(o for o in others if o and o.item_id == a.item_id)
        judgment_submit(assignment=holder, rater=holder.rater, answer=PAIR_ANSWER)
        with pytest.raises(ValidationError, match="lease expired"):
            judgment_submit(assignment=a, rater=raters[0], answer=PAIR_ANSWER)


def test_expired_lease_with_a_free_slot_still_accepts_the_answer(rated_project, raters):
    a = assignment_next(project=rated_project, rater=raters[0])
    with time_machine.travel(timezone.now() + timedelta(seconds=rated_project.lease_seconds + 5)):
        assignment_next(project=rated_project, rater=raters[1])  # sweeps the expired lease
        a.refresh_from_db()
        assert a.state == AssignmentState.EXPIRED
        judgment_submit(assignment=a, rater=raters[0], answer=answer_for(a))
    a.item.refresh_from_db()
    assert a.item.n_done == 1


def test_skip_gives_the_item_to_someone_else_and_never_back(rated_project, raters):
    rated_project.overlap = 1
    rated_project.save()
    Item.objects.filter(project=rated_project).update(overlap=1)
    a = assignment_next(project=rated_project, rater=raters[0], kind=TaskKind.PAIRWISE)
    with pytest.raises(ValidationError):
        assignment_skip(assignment=a, rater=raters[0], reason=" ")
    assignment_skip(assignment=a, rater=raters[0], reason="Not in English")
    assert (
        assignment_next(project=rated_project, rater=raters[1], kind=TaskKind.PAIRWISE).item_id
        == a.item_id
    )
    assert a.item_id not in drain(rated_project, raters[0], TaskKind.PAIRWISE)


def test_authors_never_rate_their_own_conversation(project, lead, member):
    author = member(Role.EVALUATOR)
    pairwise_conversation(project, author=author)
    items_queue(project=project, user=lead)
    assert assignment_next(project=project, rater=author) is None
    assert assignment_next(project=project, rater=member(Role.EVALUATOR)) is not None


def test_gold_items_are_mixed_in_at_the_project_rate(rated_project, raters):
    gold = Item.objects.filter(project=rated_project, kind=TaskKind.SCORE).first()
    Item.objects.filter(pk=gold.pk).update(is_gold=True, gold_answer={"scores": {"helpfulness": 5}})
    rated_project.gold_rate = 1.0
    rated_project.save()
    a = assignment_next(
        project=rated_project, rater=raters[0], kind=TaskKind.SCORE, rng=random.Random(1)
    )
    assert a.item_id == gold.pk
    rated_project.gold_rate = 0.0
    rated_project.save()
    b = assignment_next(
        project=rated_project, rater=raters[1], kind=TaskKind.SCORE, rng=random.Random(1)
    )
    assert b.item_id != gold.pk


@pytest.mark.parametrize("role", [Role.CONSUMER])
def test_consumers_cannot_rate(rated_project, member, role):
    with pytest.raises(PermissionDenied, match="rating needs the role"):
        assignment_next(project=rated_project, rater=member(role))


def test_non_members_cannot_rate(rated_project):
    from tests.factories import UserFactory

    with pytest.raises(PermissionDenied):
        assignment_next(project=rated_project, rater=UserFactory())


def test_evaluators_do_not_get_kb_items(rated_project, raters):
    with pytest.raises(PermissionDenied, match="does not do kb_verify"):
        assignment_next(project=rated_project, rater=raters[0], kind=TaskKind.KB_VERIFY)


def test_someone_elses_assignment_cannot_be_submitted_or_skipped(rated_project, raters):
    a = assignment_next(project=rated_project, rater=raters[0])
    with pytest.raises(PermissionDenied):
        judgment_submit(assignment=a, rater=raters[1], answer=answer_for(a))
    with pytest.raises(PermissionDenied):
        assignment_skip(assignment=a, rater=raters[1], reason="mine now")


def test_paused_queue_when_a_flag_is_open_and_the_policy_is_on(rated_project, raters):
    now = timezone.now()
    DriftFlag.objects.create(
        project=rated_project,
        rater=raters[0],
        detector="agreement",
        window_kind="count",
        window_start=now,
        window_end=now,
        method="online",  # only a flag with the documented guarantee pauses
    )
    assert assignment_next(project=rated_project, rater=raters[0]) is not None
    rated_project.pause_flagged_raters = True
    rated_project.save()
    Assignment.objects.all().delete()
    Item.objects.update(n_active=0)
    with pytest.raises(PermissionDenied, match="paused"):
        assignment_next(project=rated_project, rater=raters[0])


def test_pairwise_sides_are_randomised_per_assignment(project, lead, member):
    for i in range(40):
        pairwise_conversation(project, external_id=f"p{i}")
    project.has_scoring = False
    project.save()
    items_queue(project=project, user=lead)
    rater = member(Role.EVALUATOR)
    sides = []
    for _ in range(40):
        a = assignment_next(project=project, rater=rater)
        sides.append(a.left_is_a)
        judgment_submit(assignment=a, rater=rater, answer=PAIR_ANSWER)
    assert 5 < sum(sides) < 35
