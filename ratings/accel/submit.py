"""``submit_sql``: a judgment stored in one SQL statement (PostgreSQL).

``submit_in_one_statement`` does what the plain path in
``ratings.services.judgments.submit`` does with the ORM in one transaction (turn the live
lease into a submission, count it on the item, insert the judgment and its scores), in one
prepared statement in autocommit. The lease is taken only while it is still live, so a lease
that expired or was submitted meanwhile writes nothing and the service's locked path handles
it. See ratings/accel/README.md.
"""

import json

from django.db import DEFAULT_DB_ALIAS, connection, connections

from config.accel.prepared import prepared_cursor
from ratings.models import Assignment, AssignmentState, Item, Judgment, Score

# The write of a submit on PostgreSQL, in one statement (autocommit, so atomic): turn the
# assignment's lease into a submission (only while it is still a live lease), count it on the
# item, insert the judgment and its scores. No row when the lease is no longer live.
SUBMIT_SQL = """
WITH taken AS (
    UPDATE {assignment} SET state = %s, submitted_at = %s
    WHERE id = %s AND state = %s
    RETURNING id, item_id
), counted AS (
    UPDATE {item} AS i SET n_done = i.n_done + 1 FROM taken WHERE i.id = taken.item_id
), judged AS (
    INSERT INTO {judgment} ({columns}) SELECT {values} FROM taken RETURNING id
), scored AS (
    INSERT INTO {score} (judgment_id, criterion_id, value, choices, text)
    SELECT judged.id, s.criterion_id, s.value, s.choices::jsonb, s.text
    FROM judged, unnest(%s::bigint[], %s::float8[], %s::text[], %s::text[])
        AS s(criterion_id, value, choices, text)
    RETURNING id, criterion_id
)
SELECT id, NULL FROM judged UNION ALL SELECT id, criterion_id FROM scored
"""
_JUDGMENT_FIELDS = [f for f in Judgment._meta.concrete_fields if not f.primary_key]
SUBMIT_SQL = SUBMIT_SQL.format(
    assignment=Assignment._meta.db_table,
    item=Item._meta.db_table,
    judgment=Judgment._meta.db_table,
    score=Score._meta.db_table,
    columns=", ".join(connection.ops.quote_name(f.column) for f in _JUDGMENT_FIELDS),
    # typed: a prepared statement's NULL in a SELECT list would otherwise be text
    values=", ".join(f"%s::{f.cast_db_type(connection)}" for f in _JUDGMENT_FIELDS),
)


def submit_in_one_statement(
    *, assignment: Assignment, judgment: Judgment, scores: list[Score], now
) -> bool:
    """Store ``judgment`` (not saved yet) and its ``scores`` for the leased ``assignment``
    with ``SUBMIT_SQL``, setting their ids and the assignment's state as saving would;
    False, and nothing written, when the lease is no longer live (expired or submitted
    meanwhile)."""
    params = [AssignmentState.SUBMITTED, now, assignment.pk, AssignmentState.LEASED]
    db = connections[DEFAULT_DB_ALIAS]  # once: each attribute of ``connection`` is a lookup
    params += [f.get_db_prep_save(getattr(judgment, f.attname), db) for f in _JUDGMENT_FIELDS]
    params += [
        [score.criterion_id for score in scores],
        [score.value for score in scores],
        [json.dumps(score.choices) for score in scores],
        [score.text for score in scores],
    ]
    with prepared_cursor() as cursor:
        cursor.execute(SUBMIT_SQL, params)
        rows = cursor.fetchall()
    if not rows:
        return False
    ids = {criterion_id: pk for pk, criterion_id in rows}
    judgment.pk = ids.pop(None)
    judgment._state.adding, judgment._state.db = False, connection.alias
    for score in scores:
        score.pk = ids[score.criterion_id]
        score._state.adding, score._state.db = False, connection.alias
    assignment.state, assignment.submitted_at = AssignmentState.SUBMITTED, now
    return True
