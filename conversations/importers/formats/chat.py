"""Native JSONL, OpenAI chat messages and ShareGPT."""

import json

from conversations.importers.formats.fields import (
    OPENAI_ROLE_ALIASES,
    ROLES,
    SHAREGPT_ROLES,
    _content,
    _dict,
    _id,
    _kb_refs,
    _list,
    _require_response,
    _role,
    _str,
    record_datetime,
)
from conversations.importers.records import (
    ParsedConversation,
    ParsedMessage,
    RecordError,
    SourceRecord,
)

FAST_MESSAGE_KEYS = frozenset({"role", "content", "name", "model", "id", "metadata"})


def _message_fast(item: object, position: int, aliases: dict[str, str]) -> ParsedMessage | None:
    """The common case (plain strings, no KB references) without per-field checks; None
    sends anything unusual to the full validation, which names the bad field."""
    if type(item) is not dict or not item.keys() <= FAST_MESSAGE_KEYS:
        return None
    content, role = item.get("content"), item.get("role")
    if type(role) is not str:  # (a list or an object cannot be looked up in aliases)
        return None
    role = aliases.get(role, role)
    if type(content) is not str or role not in ROLES or not content.strip():
        return None
    name, model, mid = item.get("name", ""), item.get("model", ""), item.get("id", "")
    metadata = item.get("metadata")
    if (
        type(name) is not str
        or type(model) is not str
        or type(mid) is not str
        or len(mid) > 255
        or not (metadata is None or type(metadata) is dict)
    ):
        return None
    return ParsedMessage(
        position=position,
        role=role,
        content=content,
        name=name[:255],
        model=model[:255],
        external_id=mid,
        metadata=dict(metadata) if metadata else {},
    )


def _message(item: object, field: str, position: int, aliases: dict[str, str]) -> ParsedMessage:
    item = _dict(item, field)
    role = _role(item.get("role"), f"{field}.role", aliases)
    metadata = dict(_dict(item.get("metadata"), f"{field}.metadata"))
    content = item.get("content")
    if role == "assistant" and not content and item.get("tool_calls"):
        metadata["tool_calls"] = item["tool_calls"]
        content = json.dumps(item["tool_calls"], ensure_ascii=False)
    return ParsedMessage(
        position=position,
        role=role,
        content=_content(content, f"{field}.content"),
        name=_str(item.get("name"), f"{field}.name")[:255],
        model=_str(item.get("model"), f"{field}.model")[:255],
        external_id=_id(item.get("id"), f"{field}.id"),
        metadata=metadata,
        kb_references=_kb_refs(item.get("kb_references"), f"{field}.kb_references"),
    )


def parse_native(record: SourceRecord) -> list[ParsedConversation]:
    obj = _dict(record.value, "record")
    raw_messages = _list(obj.get("messages"), "messages", required=True)
    if not raw_messages:
        raise RecordError("messages", "must not be empty")
    messages = [
        _message_fast(m, i, OPENAI_ROLE_ALIASES)
        or _message(m, f"messages[{i}]", i, OPENAI_ROLE_ALIASES)
        for i, m in enumerate(raw_messages)
    ]
    candidates = _list(obj.get("candidates"), "candidates")
    if candidates:
        last = messages[-1]
        position, first = (last.position, 1) if last.role == "assistant" else (len(messages), 0)
        for i, c in enumerate(candidates):
            f = f"candidates[{i}]"
            c = _dict(c, f)
            rank = c.get("rank")
            if rank is not None and (
                isinstance(rank, bool) or not isinstance(rank, int) or rank < 0
            ):
                raise RecordError(f"{f}.rank", f"expected a non-negative integer, got {rank!r}")
            messages.append(
                ParsedMessage(
                    position=position,
                    candidate=first + i,
                    role="assistant",
                    content=_content(c.get("content"), f"{f}.content"),
                    model=_str(c.get("model"), f"{f}.model")[:255],
                    external_id=_id(c.get("id"), f"{f}.id"),
                    source_rank=rank,
                    metadata=_dict(c.get("metadata"), f"{f}.metadata"),
                    kb_references=_kb_refs(c.get("kb_references"), f"{f}.kb_references"),
                )
            )
    conv = ParsedConversation(
        messages=messages,
        external_id=_id(obj.get("id"), "id") or None,
        metadata=_dict(obj.get("metadata"), "metadata"),
        occurred_at=record_datetime(obj.get("occurred_at"), "occurred_at"),
        line=record.line,
    )
    return [_require_response(conv)]


def parse_sharegpt(record: SourceRecord) -> list[ParsedConversation]:
    obj = _dict(record.value, "record")
    turns = _list(obj.get("conversations"), "conversations", required=True)
    if not turns:
        raise RecordError("conversations", "must not be empty")
    messages = []
    for i, t in enumerate(turns):
        f = f"conversations[{i}]"
        t = _dict(t, f)
        sender = _str(t.get("from"), f"{f}.from", required=True)
        role = SHAREGPT_ROLES.get(sender.lower())
        if role is None:
            raise RecordError(
                f"{f}.from",
                f"unknown speaker {sender!r}; expected one of {', '.join(sorted(SHAREGPT_ROLES))}",
            )
        messages.append(
            ParsedMessage(position=i, role=role, content=_content(t.get("value"), f"{f}.value"))
        )
    metadata = {k: v for k, v in obj.items() if k not in ("conversations", "id")}
    conv = ParsedConversation(
        messages=messages,
        external_id=_id(obj.get("id"), "id") or None,
        metadata=metadata,
        line=record.line,
    )
    return [_require_response(conv)]
