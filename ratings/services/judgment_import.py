"""Judgments made elsewhere: import them from JSONL, or make them from the sources' rankings.

Guarantees of ``judgment_import`` and ``source_ranks_import`` (docs/formats.md, "Existing
judgments"):
- one database transaction, and one import per project at a time (the project row is locked);
  by default a file with any invalid record imports nothing and ``JudgmentImportFailed`` is
  raised with every error (file, line, field, what was expected); with ``skip_invalid`` the
  valid records are imported and each bad one is written to ``rejects``;
- idempotent: a judgment is identified by its source and id, or by ``sha256:<hash>`` of its
  content (item, rater, time, answer) when it has no id. The same key with the same content
  is counted as a duplicate; with different content it is a conflict, reported and never
  overwritten;
- one current judgment per (item, rater): a judgment by a rater who already judged the item
  becomes a new version only when it was made later; the older one stays readable with
  ``is_current`` false. An earlier (or simultaneous) one is a conflict;
- items are found or created (pairwise: response A is the one with the lower id; a preference
  given on the source's A/B is converted). Imported judgments are external, have no
  assignment and leave the items' internal counters (``n_active``, ``n_done``) untouched;
- raters are found or created by user name; a new one gets an unusable password and an
  external ``RaterProfile``. A name that belongs to an internal user is refused;
- streaming: records are read, checked and written in batches, so memory stays flat.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from typing import Any, BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.dateparse import parse_datetime

from conversations.importers.readers import RecordReadError, iter_json_lines, open_stream
from conversations.importers.records import RecordError, SourceRecord
from conversations.models import Conversation, Message, MessageRole, Project, Role
from conversations.services.access import require_role
from conversations.services.imports import ImportIssue
from ratings.models import Item, Judgment, RaterProfile, Score, TaskKind
from ratings.services.judgments import (
    DISPLAY_CHOICES,
    CleanAnswer,
    _check_time,
    clean_answer,
    current_rubric,
)

User = get_user_model()

FIELDS = (
    "id",
    "source",
    "conversation_id",
    "response_id",
    "candidate",
    "response_a_id",
    "candidate_a",
    "response_b_id",
    "candidate_b",
    "rater",
    "created_at",
    "scores",
    "preference",
    "verdict",
    "corrected_answer",
    "missing_fact",
    "kb_issues",
    "rationale",
    "time_on_task_ms",
)
KB_FIELDS = ("corrected_answer", "missing_fact", "kb_issues")
CHOICE_KEYS = ("choice", "left", "both_bad")
WINNER_KEYS = ("winner", "strength", "both_bad")
# Per-criterion preferences given on the source's A/B (with "winner"); A is read as the left.
AB_CHOICES = {
    "a_much_better": "left_much_better",
    "a_better": "left_better",
    "tie": "tie",
    "b_better": "right_better",
    "b_much_better": "right_much_better",
}
DISPLAY_NAMES = {v: k for k, v in DISPLAY_CHOICES.items()}
KIND_FIELD = {
    TaskKind.SCORE: "scores",
    TaskKind.PAIRWISE: "preference",
    TaskKind.KB_VERIFY: "verdict",
}
MAX_NAME = User._meta.get_field(User.USERNAME_FIELD).max_length or 150


@dataclass
class JudgmentImportSummary:
    source: str
    records_read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    conflicts: int = 0
    superseded: int = 0
    items_created: int = 0
    raters_created: int = 0
    error_count: int = 0
    errors: list[ImportIssue] = field(default_factory=list)
    bytes_read: int = 0

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "records_read": self.records_read,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "conflicts": self.conflicts,
            "superseded": self.superseded,
            "items_created": self.items_created,
            "raters_created": self.raters_created,
            "error_count": self.error_count,
            "errors": [e.as_dict() for e in self.errors],
        }


class JudgmentImportFailed(Exception):
    """The input had invalid records and nothing was imported."""

    def __init__(self, summary: JudgmentImportSummary):
        shown = "\n".join(f"  {e}" for e in summary.errors[:20])
        more = summary.error_count - min(20, len(summary.errors))
        super().__init__(
            f"{summary.source}: nothing imported, {summary.error_count} invalid record(s):\n{shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
        self.summary = summary


ProgressCallback = Callable[[JudgmentImportSummary], None]


@dataclass(slots=True)
class _Ref:
    """How a record names one response: by external id, by candidate index, or by row id."""

    field: str
    external_id: str | None = None
    candidate: int | None = None
    pk: int | None = None


@dataclass(slots=True, eq=False)
class _Record:
    line: int
    raw: bytes | str
    kind: str
    conversation_id: str
    refs: tuple[_Ref, ...]
    rater: str
    created_at: datetime
    answer: dict  # what clean_answer reads; pairwise in display terms with the source's A left
    left_is_source_a: bool = True
    side_known: bool = False
    external_id: str = ""
    source: str = ""
    time_ms: int | None = None
    label: str = "line"
    # filled while the batch is resolved
    conversation: Conversation | None = None
    responses: tuple[Message, ...] = ()
    user: Any = None
    clean: CleanAnswer | None = None
    left_is_a: bool | None = None
    key: str = ""
    digest: str = ""
    version: int = 1
    is_current: bool = True

    @property
    def item_key(self) -> tuple[str, int, int | None]:
        ids = sorted(m.pk for m in self.responses)
        return (self.kind, ids[0], ids[1] if len(ids) > 1 else None)


@dataclass(slots=True)
class _Current:
    """The judgment that is current for one (item, rater), in the database or in the batch."""

    created_at: datetime
    version: int
    is_external: bool
    pk: int | None = None
    pending: _Record | None = None


# -- reading one record -------------------------------------------------------------------


def _text(value: object, fld: str, *, required: bool = False, max_length: int = 0) -> str:
    if value is None:
        if required:
            raise RecordError(fld, "is missing")
        return ""
    if not isinstance(value, str):
        raise RecordError(fld, f"expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise RecordError(fld, "must not be empty")
    if max_length and len(value) > max_length:
        raise RecordError(fld, f"is longer than {max_length} characters")
    return value


def _ident(value: object, fld: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(fld, f"expected a string or integer id, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise RecordError(fld, "must not be empty")
    if len(text) > 255:
        raise RecordError(fld, "is longer than 255 characters")
    return text


def _index(value: object, fld: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(fld, f"expected a non-negative integer, got {value!r}")
    return value


def _when(value: object, fld: str) -> datetime:
    if value is None:
        raise RecordError(fld, "is missing")
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise RecordError(fld, f"expected an ISO 8601 date-time, got {value!r}")
    if parsed.tzinfo is None:
        raise RecordError(fld, "needs a time zone (e.g. 2024-05-01T12:00:00Z)")
    return parsed


def _ref(value: dict, id_field: str, candidate_field: str) -> _Ref:
    external_id = _ident(value.get(id_field), id_field)
    candidate = _index(value.get(candidate_field), candidate_field)
    if external_id is not None and candidate is not None:
        raise RecordError(candidate_field, f"give {id_field} or {candidate_field}, not both")
    if external_id is None and candidate is None:
        raise RecordError(id_field, f"is missing (or give {candidate_field})")
    if external_id is not None:
        return _Ref(id_field, external_id=external_id)
    return _Ref(candidate_field, candidate=candidate)


def _preference(value: object, scores: object) -> tuple[dict, bool, bool]:
    """Read a pairwise preference; return (answer, left_is_source_a, side_known)."""
    if not isinstance(value, dict):
        raise RecordError("preference", f"expected an object, got {type(value).__name__}")
    if "choice" in value and "winner" in value:
        raise RecordError("preference", "give choice (with left) or winner, not both")
    if "choice" not in value and "winner" not in value:
        raise RecordError("preference", "expected choice (with left) or winner")
    form = "choice" if "choice" in value else "winner"
    allowed = CHOICE_KEYS if form == "choice" else WINNER_KEYS
    for key in value:
        if key not in allowed:
            raise RecordError(
                f"preference.{key}", f"unknown field; with {form} expected {', '.join(allowed)}"
            )
    answer: dict = {"scores": scores}
    if "both_bad" in value:
        answer["both_bad"] = value["both_bad"]
    if form == "choice":
        left = value.get("left")
        if left not in ("a", "b"):
            raise RecordError(
                "preference.left", f"expected 'a' or 'b' (the response shown left), got {left!r}"
            )
        answer["choice"] = value["choice"]
        return answer, left == "a", True
    winner, strength = value.get("winner"), value.get("strength")
    if winner not in ("a", "b", "tie"):
        raise RecordError("preference.winner", f"expected 'a', 'b' or 'tie', got {winner!r}")
    if winner == "tie" and strength is not None:
        raise RecordError("preference.strength", "a tie has no strength")
    if strength is None:
        strength = 1
    if isinstance(strength, bool) or strength not in (1, 2):
        raise RecordError("preference.strength", f"expected 1 or 2, got {strength!r}")
    signed = {"a": -strength, "b": strength, "tie": 0}[winner]
    answer["choice"] = DISPLAY_NAMES[signed]
    if isinstance(scores, dict):
        mapped = {}
        for key, raw in scores.items():
            if raw in (None, "", []):
                continue
            if raw not in AB_CHOICES:
                raise RecordError(f"scores.{key}", f"expected one of {', '.join(AB_CHOICES)}")
            mapped[key] = AB_CHOICES[raw]
        answer["scores"] = mapped
    return answer, True, False


def parse_record(record: SourceRecord) -> _Record:
    """Check one JSONL record's shape and types (not yet against the database)."""
    value = record.value
    if not isinstance(value, dict):
        raise RecordError("record", f"expected an object, got {type(value).__name__}")
    for key in value:
        if key not in FIELDS:
            raise RecordError(key, f"unknown field; expected {', '.join(FIELDS)}")
    conversation_id = _ident(value.get("conversation_id"), "conversation_id")
    if conversation_id is None:
        raise RecordError("conversation_id", "is missing")
    rater = _text(value.get("rater"), "rater", required=True, max_length=MAX_NAME).strip()
    created_at = _when(value.get("created_at"), "created_at")
    external_id = _ident(value.get("id"), "id") or ""
    source = _text(value.get("source"), "source", max_length=64).strip()
    scores = value.get("scores")
    rationale = value.get("rationale")
    if "preference" in value and "verdict" in value:
        raise RecordError("verdict", "a record holds one judgment: a preference or a verdict")
    left_is_source_a, side_known = True, False
    if "preference" in value:
        kind = TaskKind.PAIRWISE
        answer, left_is_source_a, side_known = _preference(value["preference"], scores)
        refs = (
            _ref(value, "response_a_id", "candidate_a"),
            _ref(value, "response_b_id", "candidate_b"),
        )
        stray = ("response_id", "candidate")
    else:
        refs = (_ref(value, "response_id", "candidate"),)
        stray = ("response_a_id", "candidate_a", "response_b_id", "candidate_b")
        if "verdict" in value:
            kind = TaskKind.KB_VERIFY
            if scores is not None:
                raise RecordError("scores", "a KB verdict takes no rubric scores")
            answer = {key: value.get(key) for key in ("verdict", *KB_FIELDS)}
            for key in ("corrected_answer", "missing_fact"):
                _text(value.get(key), key)
        else:
            kind = TaskKind.SCORE
            if not scores:
                raise RecordError("scores", "expected rubric scores, a preference or a verdict")
            answer = {"scores": scores}
    for key in stray:
        if key in value:
            raise RecordError(key, f"does not belong in a {kind} judgment")
    if kind != TaskKind.KB_VERIFY:
        for key in KB_FIELDS:
            if key in value:
                raise RecordError(key, "belongs to a KB verdict only")
    if rationale is not None:
        answer["rationale"] = rationale
    try:
        time_ms = _check_time(value.get("time_on_task_ms"))
    except ValidationError as exc:
        raise RecordError("time_on_task_ms", exc.message_dict["time_on_task_ms"][0]) from None
    return _Record(
        line=record.line,
        raw=record.raw or json.dumps(value, ensure_ascii=False),
        kind=kind,
        conversation_id=conversation_id,
        refs=refs,
        rater=rater,
        created_at=created_at,
        answer=answer,
        left_is_source_a=left_is_source_a,
        side_known=side_known,
        external_id=external_id,
        source=source,
        time_ms=time_ms,
    )


# -- content identity ---------------------------------------------------------------------


def _digest(
    *,
    item_key: tuple,
    rater: str,
    created_at: datetime,
    preference: int | None,
    both_bad: bool,
    left_is_a: bool | None,
    verdict: str,
    corrected_answer: str,
    missing_fact: str,
    kb_issues: Iterable[dict],
    rationale: str,
    time_on_task_ms: int | None,
    scores: Iterable[tuple[str, float | None, list, str]],
) -> str:
    """A digest of what a judgment says, computed the same way from a record and from a row."""
    payload = [
        list(item_key),
        rater,
        created_at.astimezone(UTC).isoformat(),
        preference,
        both_bad,
        left_is_a,
        verdict,
        corrected_answer,
        missing_fact,
        list(kb_issues),
        rationale,
        time_on_task_ms,
        sorted([list(s) for s in scores], key=lambda s: s[0]),
    ]
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _record_digest(r: _Record) -> str:
    clean = r.clean
    assert clean is not None
    return _digest(
        item_key=r.item_key,
        rater=r.rater,
        created_at=r.created_at,
        preference=clean.preference,
        both_bad=clean.both_bad,
        left_is_a=r.left_is_a,
        verdict=clean.verdict,
        corrected_answer=clean.corrected_answer,
        missing_fact=clean.missing_fact,
        kb_issues=clean.kb_issues,
        rationale=clean.rationale,
        time_on_task_ms=r.time_ms,
        scores=[(c.key, v, ch, t) for c, v, ch, t in clean.scores],
    )


ROW_FIELDS = (
    "id",
    "source",
    "external_id",
    "item__kind",
    "item__response_id",
    "item__response_b_id",
    f"rater__{User.USERNAME_FIELD}",
    "created_at",
    "preference",
    "both_bad",
    "left_is_a",
    "verdict",
    "corrected_answer",
    "missing_fact",
    "kb_issues",
    "rationale",
    "time_on_task_ms",
)


def _stored_digests(judgments) -> dict[tuple[str, str], str]:
    """(source, external id) -> digest of the stored judgments, read as plain values."""
    rows = list(judgments.values_list(*ROW_FIELDS))
    scores = defaultdict(list)
    for judgment_id, *score in Score.objects.filter(
        judgment_id__in=[row[0] for row in rows]
    ).values_list("judgment_id", "criterion__key", "value", "choices", "text"):
        scores[judgment_id].append(score)
    digests: dict[tuple[str, str], str] = {}
    for pk, source, external_id, kind, a, b, rater, created_at, *answer in rows:
        preference, both_bad, left_is_a, verdict, corrected, missing, issues, why, ms = answer
        digests[(source, external_id)] = _digest(
            item_key=(kind, a, b),
            rater=rater,
            created_at=created_at,
            preference=preference,
            both_bad=both_bad,
            left_is_a=left_is_a,
            verdict=verdict,
            corrected_answer=corrected,
            missing_fact=missing,
            kb_issues=issues,
            rationale=why,
            time_on_task_ms=ms,
            scores=scores[pk],
        )
    return digests


def _validation_field(exc: ValidationError, kind: str) -> tuple[str, str]:
    if hasattr(exc, "error_dict"):
        fld, messages = next(iter(exc.message_dict.items()))
        if kind == TaskKind.PAIRWISE and fld in ("choice", "both_bad"):
            fld = f"preference.{fld}"
        return fld, "; ".join(messages)
    return "", "; ".join(exc.messages)


def _is_external(user: AbstractBaseUser) -> bool:
    try:
        return bool(user.rater_profile.is_external)
    except RaterProfile.DoesNotExist:
        return False


# -- the importer -------------------------------------------------------------------------


class _Importer:
    def __init__(
        self,
        *,
        project: Project,
        summary: JudgmentImportSummary,
        skip_invalid: bool,
        rejects: BinaryIO | None,
        batch_size: int,
    ):
        self.project = project
        self.summary = summary
        self.skip_invalid = skip_invalid
        self.rejects = rejects
        self.batch_size = batch_size
        self.rubric = current_rubric(project)
        self.enabled = {
            TaskKind.SCORE: project.has_scoring,
            TaskKind.PAIRWISE: project.has_pairwise,
            TaskKind.KB_VERIFY: project.has_kb_verification,
        }
        self.batch: list[_Record] = []
        self.refused: list[tuple[int, ImportIssue, bytes | str]] = []

    def reject(self, line: int, label: str, fld: str, message: str, raw: bytes | str) -> None:
        self.summary.error_count += 1
        self.summary.rejected += 1
        self.refused.append(
            (line, ImportIssue(self.summary.source, line, label, fld, message), raw)
        )

    def report(self) -> None:
        """Report the batch's refusals in line order (they are found stage by stage)."""
        refused, self.refused = self.refused, []
        errors = self.summary.errors
        for _, issue, raw in sorted(refused, key=lambda x: x[0]):
            if len(errors) < settings.IMPORT_MAX_REPORTED_ERRORS:
                errors.append(issue)
            if self.rejects is not None and self.skip_invalid:
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                entry = {
                    issue.label: issue.line,
                    "field": issue.field,
                    "error": issue.message,
                    "record": text,
                }
                self.rejects.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")

    def refuse(self, r: _Record, fld: str, message: str) -> None:
        self.reject(r.line, r.label, fld, message, r.raw)

    def feed(self, item: SourceRecord | RecordReadError) -> None:
        self.summary.records_read += 1
        if isinstance(item, RecordReadError):
            self.reject(item.line, item.label, item.field, item.message, item.raw)
            return
        try:
            record = parse_record(item)
        except RecordError as exc:
            raw = item.raw or json.dumps(item.value, ensure_ascii=False, default=str)
            self.reject(item.line, item.label, exc.field, exc.message, raw)
            return
        self.add(record)

    def add(self, record: _Record) -> None:
        self.batch.append(record)
        if len(self.batch) >= self.batch_size:
            self.flush()

    # Each stage keeps the records it could resolve and refuses the others, in line order.

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if batch:
            batch = self.resolve_responses(batch)
            batch = self.resolve_raters(batch)
            batch = self.clean(batch)
            items = self.existing_items(batch)
            accepted, superseded = self.decide(batch, items)
            self.write(accepted, superseded, items)
        self.report()

    def resolve_responses(self, batch: list[_Record]) -> list[_Record]:
        conversations = {
            c.external_id: c
            for c in Conversation.objects.filter(
                project=self.project, external_id__in={r.conversation_id for r in batch}
            ).only("id", "external_id", "author_id")
        }
        by_pk: dict[int, Message] = {}
        by_external: dict[tuple[int, str], list[Message]] = defaultdict(list)
        by_slot: dict[tuple[int, int, int], Message] = {}
        last: dict[int, int] = {}
        messages = Message.objects.filter(
            conversation_id__in=[c.pk for c in conversations.values()]
        ).only("id", "conversation_id", "position", "candidate", "role", "external_id")
        for m in messages.iterator(chunk_size=5000):
            by_pk[m.pk] = m
            if m.external_id:
                by_external[(m.conversation_id, m.external_id)].append(m)
            by_slot[(m.conversation_id, m.position, m.candidate)] = m
            last[m.conversation_id] = max(last.get(m.conversation_id, 0), m.position)
        kept = []
        for r in batch:
            conv = conversations.get(r.conversation_id)
            if conv is None or conv.pk not in last:
                self.refuse(
                    r,
                    "conversation_id",
                    f"unknown conversation {r.conversation_id!r} in project {self.project.slug!r}",
                )
                continue
            try:
                responses = []
                for ref in r.refs:
                    if ref.pk is not None:
                        found = [by_pk[ref.pk]] if ref.pk in by_pk else []
                    elif ref.external_id is not None:
                        found = by_external.get((conv.pk, ref.external_id), [])
                        if not found:
                            raise RecordError(
                                ref.field,
                                f"no message {ref.external_id!r} in conversation "
                                f"{r.conversation_id!r}",
                            )
                        if len(found) > 1:
                            raise RecordError(
                                ref.field,
                                f"{len(found)} messages of conversation {r.conversation_id!r} "
                                f"have the id {ref.external_id!r}; name the candidate instead",
                            )
                    else:
                        m = by_slot.get((conv.pk, last[conv.pk], ref.candidate))
                        if m is None:
                            raise RecordError(
                                ref.field,
                                f"no candidate {ref.candidate} at the last position "
                                f"({last[conv.pk]}) of conversation {r.conversation_id!r}",
                            )
                        found = [m]
                    message = found[0]
                    if message.role != MessageRole.ASSISTANT:
                        raise RecordError(
                            ref.field, f"is a {message.role} message, not an assistant response"
                        )
                    responses.append(message)
                if len(responses) == 2:
                    a, b = responses
                    if a.pk == b.pk:
                        raise RecordError(r.refs[1].field, "names the same response as A")
                    if a.position != b.position:
                        raise RecordError(
                            r.refs[1].field,
                            f"is at position {b.position}, A at {a.position}; a pair compares "
                            "candidates at the same position (the same context)",
                        )
                if not self.enabled[r.kind]:
                    raise RecordError(
                        KIND_FIELD[r.kind], f"this project does not run {r.kind} items"
                    )
            except RecordError as exc:
                self.refuse(r, exc.field, exc.message)
                continue
            r.conversation, r.responses = conv, tuple(responses)
            kept.append(r)
        return kept

    def resolve_raters(self, batch: list[_Record]) -> list[_Record]:
        users = {
            u.get_username(): u
            for u in User.objects.filter(
                **{f"{User.USERNAME_FIELD}__in": {r.rater for r in batch}}
            ).select_related("rater_profile")
        }
        kept = []
        for r in batch:
            user = users.get(r.rater)
            if user is not None and not _is_external(user):
                self.refuse(
                    r,
                    "rater",
                    f"{r.rater!r} is an internal user of this service; imported judgments "
                    "need an external rater name (e.g. prefixed with the source)",
                )
                continue
            r.user = user
            kept.append(r)
        return kept

    def clean(self, batch: list[_Record]) -> list[_Record]:
        kept = []
        for r in batch:
            a = min(r.responses, key=lambda m: m.pk)
            # the record's A is response A unless its id is the higher one
            swapped = len(r.responses) == 2 and r.responses[0].pk > r.responses[1].pk
            left_is_a = r.left_is_source_a != swapped
            probe = Item(project=self.project, kind=r.kind, response=a)
            try:
                r.clean = clean_answer(
                    item=probe, rubric=self.rubric, answer=r.answer, left_is_a=left_is_a
                )
            except ValidationError as exc:
                self.refuse(r, *_validation_field(exc, r.kind))
                continue
            r.left_is_a = left_is_a if r.kind == TaskKind.PAIRWISE and r.side_known else None
            r.digest = _record_digest(r)
            r.key = r.external_id or f"sha256:{r.digest}"
            kept.append(r)
        return kept

    def decide(
        self, batch: list[_Record], items: dict[tuple, Item]
    ) -> tuple[list[_Record], list[int]]:
        """Duplicates, conflicts and versions, in line order, against the database and the
        records before in the batch. Returns the accepted records and the judgments that they
        supersede."""
        s = self.summary
        known = _stored_digests(
            Judgment.objects.filter(
                item__project=self.project,
                is_external=True,
                source__in={r.source for r in batch},
                external_id__in={r.key for r in batch},
            ).order_by("-id")  # should a key ever be stored twice, the first one counts
        )
        currents: dict[tuple, _Current] = {}
        user_ids = {r.user.pk for r in batch if r.user is not None}
        item_keys = {item.pk: key for key, item in items.items()}
        if user_ids and items:
            pairs = Judgment.objects.filter(item_id__in=list(item_keys), rater_id__in=user_ids)
            top = {
                (row["item_id"], row["rater_id"]): row["v"]
                for row in pairs.values("item_id", "rater_id").annotate(v=Max("version"))
            }
            names = {r.user.pk: r.rater for r in batch if r.user is not None}
            for j in pairs.filter(is_current=True).only(
                "id", "item_id", "rater_id", "created_at", "is_external"
            ):
                currents[(item_keys[j.item_id], names[j.rater_id])] = _Current(
                    created_at=j.created_at,
                    version=top[(j.item_id, j.rater_id)],
                    is_external=j.is_external,
                    pk=j.pk,
                )
        accepted: list[_Record] = []
        superseded: list[int] = []
        for r in batch:
            seen = known.get((r.source, r.key))
            if seen is not None:
                if seen == r.digest:
                    s.duplicates += 1
                else:
                    s.conflicts += 1
                    self.refuse(
                        r,
                        "id",
                        f"judgment {r.key!r}"
                        + (f" from {r.source!r}" if r.source else "")
                        + " already exists with different content; it is not overwritten "
                        "(give the new version its own id)",
                    )
                continue
            pair = (r.item_key, r.rater)
            current = currents.get(pair)
            if current is not None:
                if not current.is_external:
                    s.conflicts += 1
                    self.refuse(r, "rater", f"{r.rater!r} has an internal judgment on this item")
                    continue
                if r.created_at <= current.created_at:
                    s.conflicts += 1
                    self.refuse(
                        r,
                        "created_at",
                        f"{r.rater!r} already has a judgment on this item made at "
                        f"{current.created_at.astimezone(UTC).isoformat()}; an imported "
                        "judgment replaces it only when it was made later",
                    )
                    continue
                if current.pending is not None:
                    current.pending.is_current = False
                else:
                    assert current.pk is not None
                    superseded.append(current.pk)
                r.version = current.version + 1
            known[(r.source, r.key)] = r.digest
            currents[pair] = _Current(
                created_at=r.created_at, version=r.version, is_external=True, pending=r
            )
            accepted.append(r)
        return accepted, superseded

    def existing_items(self, batch: list[_Record]) -> dict[tuple, Item]:
        keys = {r.item_key for r in batch}
        found = Item.objects.filter(
            project=self.project,
            kind__in={k[0] for k in keys},
            response_id__in={k[1] for k in keys},
        ).only("id", "kind", "response_id", "response_b_id")
        by_key = {(i.kind, i.response_id, i.response_b_id): i for i in found}
        return {k: by_key[k] for k in keys if k in by_key}

    def write(
        self, accepted: list[_Record], superseded: list[int], items: dict[tuple, Item]
    ) -> None:
        s = self.summary
        if not accepted:
            return
        created: dict[str, Any] = {}
        for r in accepted:
            if r.user is None:
                if r.rater not in created:
                    created[r.rater] = self.rater(r.rater, r.source)
                r.user = created[r.rater]
        new = {}
        for r in accepted:
            if r.item_key not in items and r.item_key not in new:
                kind, a, b = r.item_key
                assert r.conversation is not None
                new[r.item_key] = Item(
                    project=self.project,
                    kind=kind,
                    conversation_id=r.conversation.pk,
                    response_id=a,
                    response_b_id=b,
                    author_id_cache=r.conversation.author_id,
                    overlap=self.project.overlap,
                    origin="import",
                )
        if new:
            Item.objects.bulk_create(new.values(), ignore_conflicts=True)
            items.update(self.existing_items(accepted))
            s.items_created += len(new)
        if superseded:
            Judgment.objects.filter(pk__in=superseded).update(is_current=False)
            s.superseded += len(superseded)
        s.superseded += sum(1 for r in accepted if not r.is_current)
        judgments = Judgment.objects.bulk_create(
            [self.judgment(r, items[r.item_key]) for r in accepted], batch_size=1000
        )
        Score.objects.bulk_create(
            [
                Score(judgment=j, criterion=c, value=value, choices=choices, text=text)
                for j, r in zip(judgments, accepted, strict=True)
                for c, value, choices, text in r.clean.scores  # type: ignore[union-attr]
            ],
            batch_size=2000,
        )
        s.imported += len(accepted)

    def judgment(self, r: _Record, item: Item) -> Judgment:
        clean = r.clean
        assert clean is not None
        return Judgment(
            item=item,
            assignment=None,
            rater=r.user,
            version=r.version,
            is_current=r.is_current,
            rubric=self.rubric,
            guidelines_version=self.project.guidelines_version,
            preference=clean.preference,
            both_bad=clean.both_bad,
            left_is_a=r.left_is_a,
            verdict=clean.verdict,
            corrected_answer=clean.corrected_answer,
            missing_fact=clean.missing_fact,
            kb_issues=list(clean.kb_issues),
            rationale=clean.rationale,
            time_on_task_ms=r.time_ms,
            is_external=True,
            source=r.source,
            external_id=r.key,
            created_at=r.created_at,
        )

    def rater(self, name: str, source: str) -> AbstractBaseUser:
        user, created = User.objects.get_or_create(
            **{User.USERNAME_FIELD: name}, defaults={"password": make_password(None)}
        )
        if created:
            RaterProfile.objects.create(user=user, is_external=True, external_source=source)
            self.summary.raters_created += 1
        return user

    def finish(self, *, empty_is_error: bool = True) -> None:
        """Write what is left; roll everything back and raise if the input is refused."""
        self.flush()
        s = self.summary
        if s.records_read == 0 and empty_is_error:
            s.error_count = 1
            s.errors.append(ImportIssue(s.source, 0, "line", "", "the file holds no record"))
        if s.error_count and not self.skip_invalid:
            transaction.set_rollback(True)
            raise JudgmentImportFailed(s)


def _lock(project: Project, user: AbstractBaseUser | None) -> None:
    if user is not None:
        require_role(user=user, project=project, roles=(Role.LEAD,), action="importing judgments")
    # one judgment import per project at a time; NO KEY UPDATE leaves inserts of rows that
    # refer to the project (items, judgments by raters) unblocked
    Project.objects.select_for_update(no_key=True).only("pk").get(pk=project.pk)


def judgment_import(
    *,
    project: Project,
    stream: BinaryIO,
    source_name: str,
    user: AbstractBaseUser | None = None,
    skip_invalid: bool = False,
    rejects: BinaryIO | None = None,
    progress: ProgressCallback | None = None,
    batch_size: int | None = None,
) -> JudgmentImportSummary:
    """Import a JSONL file (plain or gzip) of judgments made elsewhere into ``project``.

    See the module docstring for the guarantees. ``user`` (None from the command line) must be
    a lead of the project: PermissionDenied otherwise. Raises ``JudgmentImportFailed``
    (nothing written) when a record is invalid and ``skip_invalid`` is off, or when the file
    holds no record.
    """
    summary = JudgmentImportSummary(source=source_name)
    data, counter, _ = open_stream(stream)
    with transaction.atomic():
        _lock(project, user)
        importer = _Importer(
            project=project,
            summary=summary,
            skip_invalid=skip_invalid,
            rejects=rejects,
            batch_size=batch_size or settings.IMPORT_BATCH_SIZE,
        )
        records = iter_json_lines(data, max_bytes=settings.IMPORT_MAX_RECORD_BYTES)
        for n, item in enumerate(records, 1):
            importer.feed(item)
            if progress is not None and n % 1000 == 0:
                summary.bytes_read = counter.count
                progress(summary)
        summary.bytes_read = counter.count
        importer.finish()
    if progress is not None:
        progress(summary)
    return summary


def source_rank_rater_name(source_format: str) -> str:
    return f"source:{source_format}"


def source_ranks_import(
    *, project: Project, user: AbstractBaseUser | None = None, batch_size: int | None = None
) -> JudgmentImportSummary:
    """Turn the sources' own rankings of candidates into external pairwise judgments.

    For every position whose candidates carry a source rank (OpenAssistant trees, HH-RLHF
    chosen / rejected), each pair of ranked candidates gets one judgment: the better (lower)
    rank wins with strength 1 (equal ranks: a tie), by the external rater ``source:<format>``,
    made at the conversation's ``occurred_at`` (else its ``created_at``). Same guarantees as
    ``judgment_import``; running it again adds nothing. Leads only (``user`` None: the command
    line); ValidationError when the project does not run pairwise items.
    """
    summary = JudgmentImportSummary(source="source ranks")
    if not project.has_pairwise:
        raise ValidationError({"project": "this project does not run pairwise items"})
    with transaction.atomic():
        _lock(project, user)
        importer = _Importer(
            project=project,
            summary=summary,
            skip_invalid=False,
            rejects=None,
            batch_size=batch_size or settings.IMPORT_BATCH_SIZE,
        )
        ranked = (
            Message.objects.filter(
                conversation__project=project,
                role=MessageRole.ASSISTANT,
                source_rank__isnull=False,
            )
            .order_by("conversation_id", "position", "id")
            .values_list(
                "id",
                "conversation_id",
                "position",
                "source_rank",
                "conversation__external_id",
                "conversation__source_format",
                "conversation__occurred_at",
                "conversation__created_at",
            )
        )
        group: list[tuple] = []

        def close_group() -> None:
            for a, b in combinations(group, 2):
                summary.records_read += 1
                conv_id, fmt = a[4], a[5]
                signed = (a[3] > b[3]) - (a[3] < b[3])  # the lower rank wins
                importer.add(
                    _Record(
                        line=summary.records_read,
                        raw=json.dumps(
                            {
                                "conversation_id": conv_id,
                                "pair": [a[0], b[0]],
                                "ranks": [a[3], b[3]],
                            }
                        ),
                        label="pair",
                        kind=TaskKind.PAIRWISE,
                        conversation_id=conv_id,
                        refs=(_Ref("response_a_id", pk=a[0]), _Ref("response_b_id", pk=b[0])),
                        rater=source_rank_rater_name(fmt),
                        created_at=a[6] or a[7],
                        answer={"choice": DISPLAY_NAMES[signed]},
                        external_id=f"source-rank:{a[0]}:{b[0]}",
                        source=fmt,
                    )
                )

        for row in ranked.iterator(chunk_size=5000):
            if group and (group[0][1], group[0][2]) != (row[1], row[2]):
                close_group()
                group = []
            group.append(row)
        close_group()
        importer.finish(empty_is_error=False)
    return summary
