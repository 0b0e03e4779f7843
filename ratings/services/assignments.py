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

On PostgreSQL a ``next`` is one SQL statement (``CLAIM_SQL``): it sweeps the project's expired
leases, looks for the rater's live lease, and otherwise picks, counts and leases an item, all
at once and in autocommit, and returns what the task view shows (the responses' text and the
context, whose rule is compiled from ``Message.objects.context_of``), so that the rating path
pays for one round trip and no ORM query building. The statement is prepared once per
connection (``config.prepared``). Other databases take the same steps with the ORM, one
query each.
"""

import functools
import random
import secrets
import time
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config import accel
from config.prepared import prepared_cursor
from conversations.models import Message, Project, Role
from conversations.services.access import require_role
from ratings.models import Assignment, AssignmentState, DriftFlag, Item, TaskKind
from ratings.services.judgments import RUBRIC_DIGEST_SQL

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
        return _next_in_one_statement(project=project, rater=rater, kinds=kinds, order=order)
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
    # SKIP LOCKED passes over rows that other raters are claiming this very moment; when it
    # finds nothing, look (without locking) whether anything is open for this rater at all,
    # and if so try again shortly, so that "nothing left" is never said while work remains.
    for attempt in range(MAX_CLAIM_ATTEMPTS):
        for k, gold in order:
            with transaction.atomic():
                for item_id in _candidate_ids(
                    project=project, rater=rater, kind=k, gold=gold, limit=1
                ):
                    assignment = _claim(item_id=item_id, rater=rater, project=project)
                    if assignment is not None:
                        return assignment
        if not any(
            _open_items(project=project, rater=rater, kind=k, gold=g).exists() for k, g in order
        ):
            return None
        time.sleep(0.002 * (attempt + 1))
    return None


# One ``next`` on PostgreSQL, in autocommit (a single statement is atomic). The CTEs:
# - swept: expire the project's overdue leases (the same rows ``leases_expire`` changes);
# - released: give their slots back to their items;
# - live: the rater's own live lease of an allowed kind, which is returned as it is;
# - picked: otherwise the first open item in queue order that this rater may take, locked
#   with SKIP LOCKED; items swept by this statement are passed over, since a row can be
#   changed only once per statement (they are offered again by the next call);
# - claimed: take a slot of it, re-checked on the latest row version (READ COMMITTED);
# - leased: the new assignment. A rater holds at most one assignment per item (UNIQUE), the
#   item at most ``overlap`` slots (CHECK): the database keeps the invariants here too.
# The result also carries what the task view needs (the item's kind, its responses and their
# text, the context of the rated response as JSON) and the digest of the project's current
# rubric.
CLAIM_SQL = """
WITH swept AS (
    UPDATE {assignment} SET state = %(expired)s
    WHERE project_id = %(project)s AND state = {leased} AND lease_expires_at < %(now)s
    RETURNING item_id
), released AS (
    UPDATE {item} AS i SET n_active = i.n_active - s.n
    FROM (SELECT item_id, count(*) AS n FROM swept GROUP BY item_id) AS s
    WHERE i.id = s.item_id
), live AS (
    SELECT a.id FROM {assignment} a JOIN {item} i ON i.id = a.item_id
    WHERE a.rater_id = %(rater)s AND a.project_id = %(project)s AND a.state = {leased}
      AND a.lease_expires_at > %(now)s AND i.kind = ANY(%(kinds)s)
    ORDER BY a.leased_at LIMIT 1
), picked AS (
    SELECT i.id FROM {item} i
    WHERE i.project_id = %(project)s AND i.kind = %(kind)s AND i.is_gold = %(gold)s
      AND i.queue_rank IS NOT NULL
      AND (i.author_id_cache IS NULL OR i.author_id_cache <> %(rater)s)
      AND NOT EXISTS (SELECT 1 FROM {assignment} a WHERE a.item_id = i.id AND a.rater_id = %(rater)s)
      AND NOT EXISTS (SELECT 1 FROM live)
      AND i.id NOT IN (SELECT item_id FROM swept)
    ORDER BY i.queue_rank, i.priority DESC, i.id
    LIMIT 1
    FOR UPDATE OF i SKIP LOCKED
), claimed AS (
    UPDATE {item} AS i SET n_active = i.n_active + 1
    FROM picked WHERE i.id = picked.id AND i.n_active < i.overlap AND NOT i.is_retired
    RETURNING i.id
), leased AS (
    INSERT INTO {assignment} (item_id, project_id, rater_id, state, left_is_a, leased_at,
                              lease_expires_at, submitted_at, skip_reason)
    SELECT id, %(project)s, %(rater)s, %(leased_state)s, %(left_is_a)s, %(now)s, %(expires)s,
           NULL, '' FROM claimed
    RETURNING id, item_id, left_is_a, leased_at, lease_expires_at
), mine AS (
    SELECT * FROM leased
    UNION ALL
    SELECT a.id, a.item_id, a.left_is_a, a.leased_at, a.lease_expires_at
    FROM {assignment} a WHERE a.id = (SELECT id FROM live)
)
SELECT m.id, m.item_id, m.left_is_a, m.leased_at, m.lease_expires_at,
       i.kind, i.response_id, i.response_b_id, r.conversation_id, r.position,
       {rubric_digest}, r.content, rb.content,
       (SELECT coalesce(json_agg(json_build_array(c.role, c.content, c.name)
                                 ORDER BY c.position, c.candidate), '[]'::json)
        FROM ({context}) AS c
        WHERE c.id <> i.response_id AND c.id IS DISTINCT FROM i.response_b_id)
FROM mine m JOIN {item} i ON i.id = m.item_id JOIN {message} r ON r.id = i.response_id
LEFT JOIN {message} rb ON rb.id = i.response_b_id
"""
# Stand-ins for the rated response's conversation and position, replaced in the SQL of
# ``Message.objects.context_of`` by the claim's columns: the rule of what context a message
# has stays in that one QuerySet method.
_CONVERSATION, _POSITION = -424_242, 2_147_483_641


@functools.cache
def _claim_sql() -> tuple[str, dict]:
    """``CLAIM_SQL`` with the context of the rated response (``r``) compiled from
    ``Message.objects.context_of``, and the constant parameters that query brings."""
    context = Message.objects.context_of(
        Message(conversation_id=_CONVERSATION, position=_POSITION)
    ).values_list("id", "role", "content", "name", "position", "candidate")
    sql, params = context.query.get_compiler(connection=connection).as_sql()
    parts = sql.split("%s")
    if len(parts) != len(params) + 1 or "%" in "".join(parts):
        raise RuntimeError(f"unexpected SQL for the context of a message: {sql}")
    out, constants = [parts[0]], {}
    for i, (value, part) in enumerate(zip(params, parts[1:], strict=True)):
        if value == _CONVERSATION:
            out.append("r.conversation_id")
        elif value == _POSITION:
            out.append("r.position")
        else:
            constants[f"context_{i}"] = value
            out.append(f"%(context_{i})s")
        out.append(part)
    claim = CLAIM_SQL.format(
        # a literal, not a parameter: the prepared statement's generic plan can then use the
        # partial indexes on live leases (their condition is state = 'leased')
        leased=f"'{AssignmentState.LEASED.value}'",
        assignment=Assignment._meta.db_table,
        item=Item._meta.db_table,
        message=Message._meta.db_table,
        rubric_digest=RUBRIC_DIGEST_SQL.format(project="i.project_id"),
        context="".join(out),
    )
    return claim, constants


def _next_in_one_statement(
    *, project: Project, rater, kinds: tuple[str, ...], order: list[tuple[str, bool]]
) -> Assignment | None:
    """``assignment_next`` on PostgreSQL: one statement per (kind, gold) tried, usually one."""
    for attempt in range(MAX_CLAIM_ATTEMPTS):
        for kind, gold in order:
            now = timezone.now()
            params = {
                "project": project.pk,
                "rater": rater.pk,
                "kinds": list(kinds),
                "kind": kind,
                "gold": gold,
                "now": now,
                "expires": now + timedelta(seconds=project.lease_seconds),
                "left_is_a": bool(secrets.randbits(1)),
                "leased_state": AssignmentState.LEASED.value,
                "expired": AssignmentState.EXPIRED.value,
            }
            claim_sql, constants = _claim_sql()
            params.update(constants)
            with prepared_cursor() as cursor:
                cursor.execute(claim_sql, params)
                row = cursor.fetchone()
            if row is not None:
                return _assignment_from_row(row, project=project, rater=rater)
        if not any(
            _open_items(project=project, rater=rater, kind=k, gold=g).exists() for k, g in order
        ):
            return None
        time.sleep(0.002 * (attempt + 1))
    return None


def _assignment_from_row(row: tuple, *, project: Project, rater) -> Assignment:
    """The leased assignment of a ``CLAIM_SQL`` row, with its item, the item's project and
    rated response (id, conversation and position only) already attached, the digest of
    the project's rubric in ``rubric_digest``, and the context and the responses' text in
    ``task_messages``: the task view then needs no query."""
    (pk, item_id, left_is_a, leased_at, expires, kind, response_id, response_b_id) = row[:8]
    conversation_id, position, digest, content, content_b, context = row[8:]
    response = Message.from_db(
        "default", ["id", "conversation_id", "position"], [response_id, conversation_id, position]
    )
    item = Item.from_db(
        "default",
        ["id", "project_id", "kind", "response_id", "response_b_id"],
        [item_id, project.pk, kind, response_id, response_b_id],
    )
    item.project = project
    item.response = response
    assignment = Assignment.from_db(
        "default",
        [f.attname for f in Assignment._meta.concrete_fields],
        [pk, item_id, project.pk, rater.pk, AssignmentState.LEASED, left_is_a, leased_at, expires]
        + [None, ""],
    )
    assignment.item = item
    assignment.rater = rater
    assignment.rubric_digest = digest
    contents = {response_id: content, response_b_id: content_b}
    assignment.task_messages = (
        [{"role": role, "content": text, "name": name} for role, text, name in context],
        contents,
    )
    return assignment


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
