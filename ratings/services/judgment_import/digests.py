"""What identifies an imported judgment: its source and id, or a digest of its content."""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from ratings.models import Score, TaskKind
from ratings.services.judgment_import.records import _Record

User = get_user_model()


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
