"""CSV rows: conversation id, turn index, role, content."""

from conversations.importers.formats.fields import (
    OPENAI_ROLE_ALIASES,
    _content,
    _dict,
    _require_response,
    _role,
)
from conversations.importers.records import (
    ParsedConversation,
    ParsedMessage,
    RecordError,
    SourceRecord,
)
from conversations.importers.safe_json import loads


def _csv_field(row_no: int, check, *args):
    """Run a field check and make its error name the CSV row."""
    try:
        return check(*args)
    except RecordError as exc:
        raise RecordError(exc.field, exc.message, line=row_no) from None


def parse_csv(record: SourceRecord) -> list[ParsedConversation]:
    rows: list[tuple[int, dict[str, str]]] = record.value
    messages = []
    seen_slots: set[tuple[int, int]] = set()
    for row_no, row in rows:
        try:
            position = int(row["turn_index"])
        except ValueError:
            raise RecordError(
                "turn_index", line=row_no, message=f"expected an integer, got {row['turn_index']!r}"
            ) from None
        candidate_text = (row.get("candidate") or "0").strip()
        if not candidate_text.isdigit():
            raise RecordError(
                "candidate",
                line=row_no,
                message=f"expected a non-negative integer, got {candidate_text!r}",
            )
        candidate = int(candidate_text)
        if position < 0:
            raise RecordError("turn_index", line=row_no, message="must not be negative")
        if (position, candidate) in seen_slots:
            raise RecordError("turn_index", line=row_no, message=f"turn {position} appears twice")
        seen_slots.add((position, candidate))
        metadata: dict = {}
        if row.get("metadata", "").strip():
            try:
                value = loads(row["metadata"].encode("utf-8", "surrogatepass"), field="metadata")
                metadata = _dict(value, "metadata")
            except RecordError as exc:
                raise RecordError(exc.field, line=row_no, message=exc.message) from None
        role = _csv_field(row_no, _role, row["role"].strip(), "role", OPENAI_ROLE_ALIASES)
        if candidate and role != "assistant":
            raise RecordError(
                "candidate", line=row_no, message="only assistant turns can have candidates"
            )
        messages.append(
            ParsedMessage(
                position=position,
                candidate=candidate,
                role=role,
                content=_csv_field(row_no, _content, row["content"], "content"),
                name=(row.get("name") or "")[:255],
                model=(row.get("model") or "")[:255],
                external_id=(row.get("message_id") or "")[:255],
                metadata=metadata,
            )
        )
    messages.sort(key=lambda m: (m.position, m.candidate))
    positions = sorted({m.position for m in messages})
    if positions != list(range(len(positions))):
        raise RecordError(
            f"row {rows[0][0]}: turn_index",
            f"turns must be numbered 0, 1, 2, ... without gaps; got {positions}",
        )
    conv = ParsedConversation(
        messages=messages,
        external_id=rows[0][1]["conversation_id"].strip() or None,
        line=record.line,
    )
    return [_require_response(conv)]
