"""Storing judgments: submit (a live lease taken and the judgment stored in one transaction,
or in one statement where ``submit_sql`` is on, ratings/accel/submit.py; a locked path for
every unusual state) and revise (a new version; the old one stays)."""

import functools

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from config import accel
from config.accel.prepared import prepared_cursor
from conversations.models import Project
from ratings.accel.submit import submit_in_one_statement
from ratings.models import (
    Assignment,
    AssignmentState,
    Item,
    Judgment,
    Score,
    TaskKind,
)
from ratings.services.judgments.answers import (
    NOT_READ,
    RUBRIC_DIGEST_SQL,
    AlreadySubmitted,
    CleanAnswer,
    NotYourAssignment,
    clean_answer,
    current_rubric,
)


def _new_judgment(
    *,
    item: Item,
    rater,
    assignment,
    version: int,
    clean: CleanAnswer,
    rubric,
    left_is_a,
    time_on_task_ms,
    now,
) -> tuple[Judgment, list[Score]]:
    """The judgment and its scores, not saved yet."""
    judgment = Judgment(
        item=item,
        assignment=assignment,
        rater=rater,
        version=version,
        is_current=True,
        rubric=rubric,
        guidelines_version=item.project.guidelines_version,
        preference=clean.preference,
        both_bad=clean.both_bad,
        left_is_a=left_is_a if item.kind == TaskKind.PAIRWISE else None,
        verdict=clean.verdict,
        corrected_answer=clean.corrected_answer,
        missing_fact=clean.missing_fact,
        kb_issues=list(clean.kb_issues),
        rationale=clean.rationale,
        time_on_task_ms=time_on_task_ms,
        created_at=now,
    )
    scores = [
        Score(judgment=judgment, criterion=c, value=value, choices=choices, text=text)
        for c, value, choices, text in clean.scores
    ]
    return judgment, scores


def _with_scores(judgment: Judgment, scores: list[Score]) -> Judgment:
    """Fill the cache that prefetch_related("scores") would fill (as Django does it), so
    that rendering the new judgment's scores needs no query."""
    written = judgment.scores.all()
    written._result_cache, written._prefetch_done = scores, True
    judgment._prefetched_objects_cache = {"scores": written}
    return judgment


def _write(**kwargs) -> Judgment:
    """Save a new judgment and its scores (``_new_judgment``'s arguments)."""
    judgment, scores = _new_judgment(**kwargs)
    judgment.save(force_insert=True)
    if scores:
        for score in scores:
            score.judgment = judgment
        Score.objects.bulk_create(scores)
    return _with_scores(judgment, scores)


@transaction.atomic
def _store_if_live(*, assignment: Assignment, judgment: Judgment, scores: list[Score], now) -> bool:
    """Store ``judgment`` (not saved yet) and its ``scores`` for the leased ``assignment`` in
    one transaction; False, and nothing written, when the lease is no longer live (expired or
    submitted meanwhile). The reference for ratings/accel/submit.py."""
    taken = Assignment.objects.filter(pk=assignment.pk, state=AssignmentState.LEASED).update(
        state=AssignmentState.SUBMITTED, submitted_at=now
    )
    if not taken:
        return False
    judgment.save(force_insert=True)
    Score.objects.bulk_create(scores)
    Item.objects.filter(pk=assignment.item_id).update(n_done=F("n_done") + 1)
    assignment.state, assignment.submitted_at = AssignmentState.SUBMITTED, now
    return True


def _check_time(time_on_task_ms) -> int | None:
    if time_on_task_ms is None:
        return None
    if (
        isinstance(time_on_task_ms, bool)
        or not isinstance(time_on_task_ms, int)
        or time_on_task_ms < 0
    ):
        raise ValidationError({"time_on_task_ms": "expected a non-negative whole number"})
    return min(time_on_task_ms, 24 * 3600 * 1000)


def judgment_submit(
    *, assignment: Assignment | int, rater, answer: dict, time_on_task_ms: int | None = None
) -> Judgment:
    """Store the rater's judgment for their assignment (an Assignment or its id: it is read
    here in any case), in one transaction.

    Refused (ValidationError) when the answer does not fit the rubric, when the assignment was
    already submitted or skipped, or when the lease expired and the item has meanwhile been
    filled by others; NotYourAssignment (a PermissionDenied) when it is someone else's;
    Assignment.DoesNotExist when there is no such assignment. An expired lease whose slot is
    still free is renewed, so no answer is lost to a slow rater.

    The usual case, a live lease, reads the assignment once without a lock, checks the answer,
    then turns the lease into a submission with an UPDATE that only matches while the lease is
    still live: a lease that expired or was submitted meanwhile falls through to the locked
    path below, which handles every state.
    """
    assignment_id = assignment.pk if isinstance(assignment, Assignment) else assignment
    found = _submission_read(assignment_id)
    if found.rater_id != rater.pk:
        raise NotYourAssignment("this is not your assignment")
    if found.state == AssignmentState.LEASED:
        item = found.item
        rubric = current_rubric(item.project, digest=getattr(found, "rubric_digest", NOT_READ))
        clean = clean_answer(item=item, rubric=rubric, answer=answer, left_is_a=found.left_is_a)
        now = timezone.now()
        judgment, scores = _new_judgment(
            item=item,
            rater=rater,
            assignment=found,
            version=1,
            clean=clean,
            rubric=rubric,
            left_is_a=found.left_is_a,
            time_on_task_ms=_check_time(time_on_task_ms),
            now=now,
        )
        store = submit_in_one_statement if accel.enabled("submit_sql") else _store_if_live
        if store(assignment=found, judgment=judgment, scores=scores, now=now):
            return _with_scores(judgment, scores)
    return _submit_locked(
        assignment_id=assignment_id, rater=rater, answer=answer, time_on_task_ms=time_on_task_ms
    )


_ASSIGNMENT_FIELDS = [f.attname for f in Assignment._meta.concrete_fields]
_ASSIGNMENT_COLUMNS = [f.column for f in Assignment._meta.concrete_fields]
SUBMISSION_READ_SQL = (
    "SELECT {assignment_columns}, i.kind, i.project_id, i.response_id, p.guidelines_version"
    "{digest} FROM {assignment} a JOIN {item} i ON i.id = a.item_id"
    " JOIN {project} p ON p.id = i.project_id WHERE a.id = %s"
)


@functools.cache
def _submission_read_sql(postgres: bool) -> str:
    return SUBMISSION_READ_SQL.format(
        assignment_columns=", ".join(
            f"a.{connection.ops.quote_name(c)}" for c in _ASSIGNMENT_COLUMNS
        ),
        digest=", " + RUBRIC_DIGEST_SQL.format(project="i.project_id") if postgres else "",
        assignment=Assignment._meta.db_table,
        item=Item._meta.db_table,
        project=Project._meta.db_table,
    )


def _submission_read(assignment_id: int) -> Assignment:
    """The assignment with its item (kind, project, response) and the item's project
    (guidelines version), and on PostgreSQL the digest of the project's rubric in
    ``rubric_digest``: one query, no lock, and no ORM query building (this is the hot path of
    rating). Raises Assignment.DoesNotExist."""
    postgres = accel.enabled("submit_sql")
    sql = _submission_read_sql(postgres)
    with prepared_cursor() as cursor:
        cursor.execute(sql, [assignment_id])
        row = cursor.fetchone()
    if row is None:
        raise Assignment.DoesNotExist(f"no assignment {assignment_id}")
    n = len(_ASSIGNMENT_FIELDS)
    kind, project_id, response_id, guidelines_version = row[n : n + 4]
    assignment = Assignment.from_db(connection.alias, _ASSIGNMENT_FIELDS, row[:n])
    project = Project.from_db(
        connection.alias, ["id", "guidelines_version"], [project_id, guidelines_version]
    )
    item = Item.from_db(
        connection.alias,
        ["id", "project_id", "kind", "response_id"],
        [assignment.item_id, project_id, kind, response_id],
    )
    item.project = project
    assignment.item = item
    if postgres:
        assignment.rubric_digest = row[n + 4]
    return assignment


@transaction.atomic
def _submit_locked(
    *, assignment_id: int, rater, answer: dict, time_on_task_ms: int | None
) -> Judgment:
    """``judgment_submit`` for an assignment in any state, holding its row lock."""
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("item__project", "item__response")
        .get(pk=assignment_id)
    )
    if assignment.rater_id != rater.pk:
        raise NotYourAssignment("this is not your assignment")
    item = assignment.item
    if assignment.state == AssignmentState.SUBMITTED:
        raise AlreadySubmitted("already submitted; edit your judgment instead")
    if assignment.state == AssignmentState.SKIPPED:
        raise ValidationError("you skipped this item")
    if assignment.state == AssignmentState.EXPIRED:
        reclaimed = Item.objects.filter(pk=item.pk, n_active__lt=F("overlap")).update(
            n_active=F("n_active") + 1
        )
        if not reclaimed:
            raise ValidationError("your lease expired and other raters have completed this item")
    rubric = current_rubric(item.project)
    clean = clean_answer(item=item, rubric=rubric, answer=answer, left_is_a=assignment.left_is_a)
    now = timezone.now()
    judgment = _write(
        item=item,
        rater=rater,
        assignment=assignment,
        version=1,
        clean=clean,
        rubric=rubric,
        left_is_a=assignment.left_is_a,
        time_on_task_ms=_check_time(time_on_task_ms),
        now=now,
    )
    assignment.state = AssignmentState.SUBMITTED
    assignment.submitted_at = now
    assignment.save(update_fields=["state", "submitted_at"])
    Item.objects.filter(pk=item.pk).update(n_done=F("n_done") + 1)
    return judgment


@transaction.atomic
def judgment_revise(
    *, judgment: Judgment, rater, answer: dict, time_on_task_ms: int | None = None
) -> Judgment:
    """Write a new version of the rater's own current judgment; the old version stays readable.

    Refused when the project does not allow edits, when it is not the rater's judgment, or
    when a newer version exists (ValidationError: reload and edit the current one).
    """
    judgment = (
        Judgment.objects.select_for_update(of=("self",))
        .select_related("item__project", "item__response")
        .get(pk=judgment.pk)
    )
    if judgment.rater_id != rater.pk:
        raise PermissionDenied("this is not your judgment")
    item = judgment.item
    if not item.project.allow_edits:
        raise PermissionDenied("this project does not allow editing submitted judgments")
    if not judgment.is_current or judgment.is_external:
        raise ValidationError("only your current judgment can be edited")
    rubric = current_rubric(item.project)
    left_is_a = judgment.left_is_a if judgment.left_is_a is not None else True
    clean = clean_answer(item=item, rubric=rubric, answer=answer, left_is_a=left_is_a)
    version = (
        Judgment.objects.filter(item=item, rater=rater).aggregate(v=Max("version"))["v"] or 0
    ) + 1
    Judgment.objects.filter(pk=judgment.pk).update(is_current=False)
    return _write(
        item=item,
        rater=rater,
        assignment=judgment.assignment,
        version=version,
        clean=clean,
        rubric=rubric,
        left_is_a=judgment.left_is_a,
        time_on_task_ms=_check_time(time_on_task_ms),
        now=timezone.now(),
    )
