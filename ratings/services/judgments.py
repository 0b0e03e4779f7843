"""Judgments: submit, revise (a new version, the old one kept), validate against the rubric.

Pairwise answers arrive in the terms the rater saw (left / right) and are stored in true
terms (response A / B) using the side recorded on the assignment, so every judgment maps back
to the real responses whatever side they were shown on.
"""

import functools
import json
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, Max
from django.utils import timezone

from config.prepared import prepared_cursor
from conversations.models import Project
from ratings.models import (
    Assignment,
    AssignmentState,
    Criterion,
    Item,
    Judgment,
    Rubric,
    Scale,
    Score,
    TaskKind,
    Verdict,
)

DISPLAY_CHOICES = {
    "left_much_better": -2,
    "left_better": -1,
    "tie": 0,
    "right_better": 1,
    "right_much_better": 2,
}
KB_PROBLEMS = ("wrong", "outdated", "missing")


class AlreadySubmitted(ValidationError):
    """The assignment was already submitted (a repeated submit): edit the judgment instead."""


class NotYourAssignment(PermissionDenied):
    """The assignment belongs to another rater."""


@dataclass(frozen=True)
class CleanAnswer:
    scores: list[tuple[Criterion, float | None, list, str]]
    preference: int | None = None
    both_bad: bool = False
    verdict: str = ""
    corrected_answer: str = ""
    missing_fact: str = ""
    kb_issues: tuple = ()
    rationale: str = ""


# The digest of a project's current rubric and its criteria, as a scalar subquery on
# PostgreSQL; ``{project}`` is the SQL expression of the project's id. Editing a rubric (in
# place or as a new version) or any of its criteria changes the digest, and since criteria
# and rubrics never get their ids back a digest never comes back either: the rubric read under
# a digest is the rubric for as long as the database gives that digest.
RUBRIC_DIGEST_SQL = (
    "(SELECT md5(r::text || coalesce(string_agg(c::text, ',' ORDER BY c.id), ''))"
    f" FROM {Rubric._meta.db_table} r LEFT JOIN {Criterion._meta.db_table} c ON c.rubric_id = r.id"
    " WHERE r.project_id = {project} AND r.is_current GROUP BY r.id)"
)
NOT_READ = object()
_RUBRICS: dict[tuple[int, str], Rubric] = {}
_RUBRICS_MAX = 256


def current_rubric(project: Project, *, digest: str | None | object = NOT_READ) -> Rubric | None:
    """The project's current rubric with its criteria (None when it has none).

    ``digest`` is what ``RUBRIC_DIGEST_SQL`` gave in the caller's own query: with it, the
    rubric comes from a per-process cache and costs no query (None: the project has no current
    rubric). Without it, the rubric is read. Cached rubrics are shared between requests and
    threads: read them, never change them.
    """
    if digest is NOT_READ:
        return project.rubrics.filter(is_current=True).prefetch_related("criteria").first()
    if digest is None:
        return None
    key = (project.pk, digest)
    rubric = _RUBRICS.get(key)
    if rubric is None:
        rubric = project.rubrics.filter(is_current=True).prefetch_related("criteria").first()
        if rubric is None:
            return None
        if len(_RUBRICS) >= _RUBRICS_MAX:
            _RUBRICS.clear()
        _RUBRICS[key] = rubric
    return rubric


def _criterion_value(criterion: Criterion, raw, field: str) -> tuple[float | None, list, str]:
    """Check one criterion's answer against its scale; return (value, choices, text)."""
    if criterion.scale == Scale.LIKERT:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or int(raw) != raw:
            raise ValidationError({field: f"expected a whole number from 1 to {criterion.points}"})
        if not 1 <= raw <= criterion.points:
            raise ValidationError({field: f"expected a whole number from 1 to {criterion.points}"})
        return float(raw), [], ""
    if criterion.scale == Scale.BINARY:
        if raw in (True, 1, "yes", "true", "1"):
            return 1.0, [], ""
        if raw in (False, 0, "no", "false", "0"):
            return 0.0, [], ""
        raise ValidationError({field: "expected yes or no"})
    if criterion.scale == Scale.SINGLE_CHOICE:
        if raw not in criterion.options:
            raise ValidationError(
                {field: f"expected one of {', '.join(map(str, criterion.options))}"}
            )
        return float(criterion.options.index(raw)), [raw], ""
    if criterion.scale == Scale.MULTI_CHOICE:
        if not isinstance(raw, list) or any(r not in criterion.options for r in raw):
            raise ValidationError(
                {field: f"expected a list drawn from {', '.join(map(str, criterion.options))}"}
            )
        return None, sorted(set(raw), key=criterion.options.index), ""
    if not isinstance(raw, str):
        raise ValidationError({field: "expected text"})
    return None, [], raw.strip()


def _is_blank(raw) -> bool:
    return raw is None or raw == "" or raw == []


def clean_answer(
    *, item: Item, rubric: Rubric | None, answer: dict, left_is_a: bool
) -> CleanAnswer:
    """Validate a rater's answer for this item; raise ValidationError naming each bad field."""
    if not isinstance(answer, dict):
        raise ValidationError("the answer must be an object")
    rationale = answer.get("rationale") or ""
    if not isinstance(rationale, str):
        raise ValidationError({"rationale": "expected text"})
    criteria = list(rubric.criteria.all()) if rubric else []
    raw_scores = answer.get("scores") or {}
    if not isinstance(raw_scores, dict):
        raise ValidationError({"scores": "expected an object of criterion: answer"})
    unknown = set(raw_scores) - {c.key for c in criteria}
    if unknown:
        raise ValidationError({"scores": f"unknown criteria: {', '.join(sorted(unknown))}"})

    if item.kind == TaskKind.SCORE:
        scores = []
        for c in criteria:
            raw = raw_scores.get(c.key)
            if _is_blank(raw):
                if c.required:
                    raise ValidationError({f"scores.{c.key}": f"{c.label} is required"})
                continue
            scores.append((c, *_criterion_value(c, raw, f"scores.{c.key}")))
        return CleanAnswer(scores=scores, rationale=rationale)

    if item.kind == TaskKind.PAIRWISE:
        choice = answer.get("choice")
        if choice not in DISPLAY_CHOICES:
            raise ValidationError({"choice": f"expected one of {', '.join(DISPLAY_CHOICES)}"})
        both_bad = answer.get("both_bad", False)
        if not isinstance(both_bad, bool):
            raise ValidationError({"both_bad": "expected true or false"})
        flip = 1 if left_is_a else -1  # display terms (negative = left better) to true A/B terms
        scores = []
        for key, raw in raw_scores.items():
            if _is_blank(raw):
                continue
            if raw not in DISPLAY_CHOICES:
                raise ValidationError(
                    {f"scores.{key}": f"expected one of {', '.join(DISPLAY_CHOICES)}"}
                )
            c = next(c for c in criteria if c.key == key)
            scores.append((c, float(flip * DISPLAY_CHOICES[raw]), [], ""))
        return CleanAnswer(
            scores=scores,
            preference=flip * DISPLAY_CHOICES[choice],
            both_bad=both_bad,
            rationale=rationale,
        )

    verdict = answer.get("verdict")
    if verdict not in Verdict.values:
        raise ValidationError({"verdict": f"expected one of {', '.join(Verdict.values)}"})
    corrected = answer.get("corrected_answer") or ""
    missing = answer.get("missing_fact") or ""
    if not isinstance(corrected, str) or not isinstance(missing, str):
        raise ValidationError("corrected_answer and missing_fact are text")
    if verdict == Verdict.INCORRECT and not corrected.strip():
        raise ValidationError({"corrected_answer": "say what the correct answer is"})
    if verdict == Verdict.INCOMPLETE and not missing.strip():
        raise ValidationError({"missing_fact": "say which fact is missing"})
    issues = answer.get("kb_issues") or []
    cited = set(item.response.kb_references.values_list("article_id", flat=True))
    clean_issues = []
    for i, issue in enumerate(issues if isinstance(issues, list) else [None]):
        if not isinstance(issue, dict) or issue.get("problem") not in KB_PROBLEMS:
            raise ValidationError(
                {
                    f"kb_issues[{i}]": f"expected {{article_id, problem}} with problem one of {', '.join(KB_PROBLEMS)}"
                }
            )
        article = str(issue.get("article_id") or "").strip()
        if issue["problem"] != "missing" and article not in cited:
            raise ValidationError(
                {
                    f"kb_issues[{i}].article_id": "name an article the answer cited (or problem 'missing')"
                }
            )
        clean_issues.append({"article_id": article, "problem": issue["problem"]})
    return CleanAnswer(
        scores=[],
        verdict=verdict,
        corrected_answer=corrected.strip(),
        missing_fact=missing.strip(),
        kb_issues=tuple(clean_issues),
        rationale=rationale,
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


def _submit_in_one_statement(
    *, assignment: Assignment, judgment: Judgment, scores: list[Score], now
) -> Judgment | None:
    """``SUBMIT_SQL`` for a judgment made by ``_new_judgment``; None when the lease is no
    longer live (expired or submitted meanwhile)."""
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
        return None
    ids = {criterion_id: pk for pk, criterion_id in rows}
    judgment.pk = ids.pop(None)
    judgment._state.adding, judgment._state.db = False, connection.alias
    for score in scores:
        score.pk = ids[score.criterion_id]
        score._state.adding, score._state.db = False, connection.alias
    assignment.state, assignment.submitted_at = AssignmentState.SUBMITTED, now
    return _with_scores(judgment, scores)


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
        if connection.vendor == "postgresql":
            done = _submit_in_one_statement(
                assignment=found, judgment=judgment, scores=scores, now=now
            )
            if done is not None:
                return done
        else:
            with transaction.atomic():
                taken = Assignment.objects.filter(pk=found.pk, state=AssignmentState.LEASED).update(
                    state=AssignmentState.SUBMITTED, submitted_at=now
                )
                if taken:
                    judgment.save(force_insert=True)
                    Score.objects.bulk_create(scores)
                    Item.objects.filter(pk=item.pk).update(n_done=F("n_done") + 1)
                    found.state, found.submitted_at = AssignmentState.SUBMITTED, now
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
    postgres = connection.vendor == "postgresql"
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
