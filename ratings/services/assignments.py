"""The assignment engine: who rates what next.

Guarantees:
- an item never has more than ``overlap`` live leases plus submissions (CHECK on ``n_active``),
  and a rater holds at most one assignment per item, ever (UNIQUE): so every item ends with at
  most ``overlap`` judgments from distinct raters, whatever the concurrency;
- a rater is never given an item from a conversation they authored, nor an item they skipped
  or already judged;
- order: a rater's own live lease first; then items other raters have started (so consensus
  accumulates), then priority, then age; gold items mixed in at the project's rate, looking
  exactly like other items;
- on PostgreSQL the next item is claimed with ``FOR UPDATE SKIP LOCKED``, so concurrent raters
  never wait on each other nor claim the same slot; on SQLite writes are serialised by the
  database lock, which is correct if slower.

This module is the reference: the ORM steps, one query each, on any database. Where the
``next_sql`` acceleration is on (PostgreSQL), each try is instead one SQL statement that
sweeps, looks for the live lease and claims at once (ratings/accel/claim.py); the retries and
the "nothing left" rule below are the same for both.
"""

import random
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config import accel
from conversations.models import Project, Role
from conversations.services.access import require_role
from ratings.accel.claim import claim_in_one_statement
from ratings.models import Assignment, AssignmentState, DriftFlag, Item, TaskKind

KINDS_BY_ROLE = {
    Role.LEAD: (TaskKind.SCORE, TaskKind.PAIRWISE, TaskKind.KB_VERIFY),
    Role.EVALUATOR: (TaskKind.SCORE, TaskKind.PAIRWISE),
    Role.SME: (TaskKind.KB_VERIFY, TaskKind.SCORE, TaskKind.PAIRWISE),
}
RATING_ROLES = tuple(KINDS_BY_ROLE)
MAX_CLAIM_ATTEMPTS = 50


class QueuePaused(PermissionDenied):
    """The rater's queue in this project is paused (an open drift flag)."""


def allowed_kinds(role: str) -> tuple[str, ...]:
    return KINDS_BY_ROLE.get(role, ())


def leases_expire(*, project: Project) -> int:
    """Return expired leases of ``project`` to the pool. Safe to run concurrently and twice:
    each lease changes state once (one UPDATE ... RETURNING), and the item's count drops
    once per lease. When nothing expired it costs one statement."""
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Assignment._meta.db_table} SET state = %s "
                "WHERE project_id = %s AND state = %s AND lease_expires_at < %s "
                "RETURNING item_id",
                [AssignmentState.EXPIRED, project.pk, AssignmentState.LEASED, now],
            )
            item_ids = [row[0] for row in cursor.fetchall()]
        for item_id in item_ids:
            Item.objects.filter(pk=item_id).update(n_active=F("n_active") - 1)
    return len(item_ids)


def _open_items(*, project: Project, rater, kind: str, gold: bool):
    return (
        Item.objects.filter(project=project, kind=kind, is_gold=gold, queue_rank__isnull=False)
        .exclude(assignments__rater=rater)
        .filter(Q(author_id_cache__isnull=True) | ~Q(author_id_cache=rater.pk))
    )


def _candidate_ids(*, project: Project, rater, kind: str, gold: bool, limit: int) -> list[int]:
    items = _open_items(project=project, rater=rater, kind=kind, gold=gold).order_by(
        "queue_rank", "-priority", "id"
    )
    if connection.features.has_select_for_update_skip_locked:
        items = items.select_for_update(skip_locked=True, of=("self",))
    return list(items.values_list("id", flat=True)[:limit])


def _claim(*, item_id: int, rater, project: Project) -> Assignment | None:
    """Take one slot of the item for the rater, inside the caller's transaction. The caller
    only offers items this rater never had (one assignment per rater and item, ever)."""
    claimed = Item.objects.filter(pk=item_id, n_active__lt=F("overlap"), is_retired=False).update(
        n_active=F("n_active") + 1
    )
    if not claimed:
        return None
    now = timezone.now()
    return Assignment.objects.create(
        item_id=item_id,
        project=project,
        rater=rater,
        left_is_a=bool(secrets.randbits(1)),
        leased_at=now,
        lease_expires_at=now + timedelta(seconds=project.lease_seconds),
    )


def assignment_next(
    *, project: Project, rater, kind: str | None = None, rng: random.Random | None = None
) -> Assignment | None:
    """Lease the rater's next item (or return their live lease). None when nothing is left.

    Raises PermissionDenied when the rater's role cannot rate (or not this kind) and
    QueuePaused when a lead's policy paused this rater.
    """
    role = require_role(user=rater, project=project, roles=RATING_ROLES, action="rating")
    kinds = allowed_kinds(role)
    if kind is not None:
        if kind not in kinds:
            raise PermissionDenied(f"your role ({role}) does not do {kind} items")
        kinds = (kind,)
    if project.pause_flagged_raters and _is_paused(project=project, rater=rater):
        raise QueuePaused("your queue in this project is paused by a quality flag; ask your lead")
    # the module's generator unless one is given: seeding a new one costs more than the draw
    draw = (rng or random).random
    want_gold = project.gold_rate > 0 and draw() < project.gold_rate
    order = [(k, gold) for k in kinds for gold in (want_gold, not want_gold)]
    if accel.enabled("next_sql"):
        return _claim_with_retries(
            partial(claim_in_one_statement, kinds=kinds), project, rater, order
        )
    live = (
        Assignment.objects.filter(
            project=project,
            rater=rater,
            state=AssignmentState.LEASED,
            lease_expires_at__gt=timezone.now(),
            item__kind__in=kinds,
        )
        .order_by("leased_at")
        .first()
    )
    if live is not None:
        return live
    leases_expire(project=project)
    return _claim_with_retries(_claim_first_open, project, rater, order)


@transaction.atomic
def _claim_first_open(*, project: Project, rater, kind: str, gold: bool) -> Assignment | None:
    """One try: lease the first open item of ``kind`` (gold or not) in queue order."""
    for item_id in _candidate_ids(project=project, rater=rater, kind=kind, gold=gold, limit=1):
        return _claim(item_id=item_id, rater=rater, project=project)
    return None


def _claim_with_retries(
    take: Callable[..., Assignment | None], project: Project, rater, order: list[tuple[str, bool]]
) -> Assignment | None:
    """Call ``take`` for each (kind, gold) in ``order`` until it returns an assignment.

    SKIP LOCKED passes over rows that other raters are claiming this very moment; when no
    try finds anything, look (without locking) whether anything is open for this rater at
    all, and if so try again shortly, so that "nothing left" is never said while work
    remains."""
    for attempt in range(MAX_CLAIM_ATTEMPTS):
        for kind, gold in order:
            assignment = take(project=project, rater=rater, kind=kind, gold=gold)
            if assignment is not None:
                return assignment
        if not any(
            _open_items(project=project, rater=rater, kind=k, gold=g).exists() for k, g in order
        ):
            return None
        time.sleep(0.002 * (attempt + 1))
    return None


def _is_paused(*, project: Project, rater) -> bool:
    # only flags that meet the documented false-alarm guarantee and that the latest data
    # still supports (docs/quality.md, "Drift flags")
    return DriftFlag.objects.pausing().filter(project=project, rater=rater).exists()


@transaction.atomic
def assignment_skip(*, assignment: Assignment, rater, reason: str) -> Assignment:
    """Give the item back so that someone else rates it; the rater never gets it again."""
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.rater_id != rater.pk:
        raise PermissionDenied("this is not your assignment")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "say why you skip (it helps the lead fix the item)"})
    if assignment.state not in (AssignmentState.LEASED, AssignmentState.EXPIRED):
        raise ValidationError(f"cannot skip an assignment that is {assignment.state}")
    if assignment.state == AssignmentState.LEASED:
        Item.objects.filter(pk=assignment.item_id).update(n_active=F("n_active") - 1)
    assignment.state = AssignmentState.SKIPPED
    assignment.skip_reason = reason[:500]
    assignment.save(update_fields=["state", "skip_reason"])
    return assignment
