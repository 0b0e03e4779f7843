"""``next_sql``: a rater's next item found and leased in one SQL statement (PostgreSQL).

``claim_in_one_statement`` does what one try of the plain path in
``ratings.services.assignments`` does with the ORM (sweep the project's expired leases,
return the rater's live lease, otherwise pick, count and lease an item), all at once and in
autocommit, and returns what the task view shows (the responses' text and the context, whose
rule is compiled from ``Message.objects.context_of``), so that the rating path pays for one
round trip and no ORM query building. The statement is prepared once per connection
(``config.accel.prepared``). The invariants are the database's (UNIQUE rater and item, CHECK
on ``n_active``), so the result is exact whichever path runs. See ratings/accel/README.md.
"""

import functools
import secrets
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from config.accel.prepared import prepared_cursor
from conversations.models import Message, Project
from ratings.models import Assignment, AssignmentState, Item
from ratings.services.judgments.answers import RUBRIC_DIGEST_SQL

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
def claim_sql() -> tuple[str, dict]:
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


def claim_in_one_statement(
    *, project: Project, rater, kinds: tuple[str, ...], kind: str, gold: bool
) -> Assignment | None:
    """One try of ``assignment_next``'s claim for (``kind``, ``gold``) in one statement: the
    rater's live lease of one of ``kinds`` if any, else a new lease of the first open item of
    that kind, with the project's expired leases swept on the way; None when the statement
    found nothing to return (the service decides whether to try again)."""
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
    sql, constants = claim_sql()
    params.update(constants)
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else _assignment_from_row(row, project=project, rater=rater)


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
