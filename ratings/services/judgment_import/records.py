"""A judgment record as the file gives it: its fields checked one by one, each error naming
the field."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime

from conversations.importers.records import RecordError, SourceRecord
from conversations.models import Conversation, Message
from conversations.services.imports import ImportIssue
from ratings.models import TaskKind
from ratings.services.judgments import (
    DISPLAY_CHOICES,
    CleanAnswer,
    _check_time,
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
    file_refused: bool = False  # damaged, or over a size limit: nothing is imported

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
