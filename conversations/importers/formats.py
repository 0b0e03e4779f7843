"""Source formats: detect one from the first record, and turn records into conversations.

Each parser takes one ``SourceRecord`` and returns the conversations in it (an OpenAssistant
tree holds several), or raises ``RecordError`` naming the field and what was expected.
"""

import json
import re
from collections.abc import Callable
from datetime import datetime

from django.utils.dateparse import parse_datetime

from conversations.importers.records import (
    KBRef,
    ParsedConversation,
    ParsedMessage,
    RecordError,
    SourceRecord,
)
from conversations.models import MessageRole, SourceFormat

ROLES = set(MessageRole.values)
OPENAI_ROLE_ALIASES = {"developer": "system", "function": "tool"}
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "function_call": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
}


def _str(value: object, field: str, *, required: bool = False, allow_empty: bool = True) -> str:
    if value is None:
        if required:
            raise RecordError(field, "is missing")
        return ""
    if not isinstance(value, str):
        raise RecordError(field, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RecordError(field, "must not be empty")
    return value


def _dict(value: object, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(field, f"expected an object, got {type(value).__name__}")
    return value


def _list(value: object, field: str, *, required: bool = False) -> list:
    if value is None:
        if required:
            raise RecordError(field, "is missing")
        return []
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list, got {type(value).__name__}")
    return value


def _id(value: object, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(field, f"expected a string or integer id, got {type(value).__name__}")
    text = str(value)
    if len(text) > 255:
        raise RecordError(field, "is longer than 255 characters")
    return text


def _datetime(value: object, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well formed but impossible, e.g. month 13
        parsed = None
    if parsed is None:
        raise RecordError(field, f"expected an ISO 8601 date-time, got {value!r}")
    if parsed.tzinfo is None:
        raise RecordError(field, "needs a time zone (e.g. 2024-05-01T12:00:00Z)")
    return parsed


def _content(value: object, field: str) -> str:
    """Message content: a string, or OpenAI's list of parts whose text parts are joined."""
    if isinstance(value, list):
        texts = []
        for i, part in enumerate(value):
            part = _dict(part, f"{field}[{i}]")
            if part.get("type", "text") in ("text", "input_text", "output_text"):
                texts.append(_str(part.get("text"), f"{field}[{i}].text", required=True))
        value = "\n".join(texts)
    return _str(value, field, required=True, allow_empty=False)


def _kb_refs(value: object, field: str) -> list[KBRef]:
    refs = []
    for i, item in enumerate(_list(value, field)):
        f = f"{field}[{i}]"
        item = _dict(item, f)
        refs.append(
            KBRef(
                article_id=_id(item.get("article_id"), f"{f}.article_id")
                or _missing(f"{f}.article_id"),
                title=_str(item.get("title"), f"{f}.title")[:500],
                url=_url(item.get("url"), f"{f}.url"),
                version=_str(
                    str(item["version"])
                    if isinstance(item.get("version"), int)
                    else item.get("version"),
                    f"{f}.version",
                )[:100],
                snippet=_str(item.get("snippet"), f"{f}.snippet"),
            )
        )
    return refs


def _url(value: object, field: str) -> str:
    url = _str(value, field).strip()
    if url and not url.lower().startswith(("http://", "https://")):
        raise RecordError(field, f"expected an http:// or https:// address, got {url[:40]!r}")
    if len(url) > 1000:
        raise RecordError(field, "is longer than 1000 characters")
    return url


def _missing(field: str) -> str:
    raise RecordError(field, "is missing")


def _role(value: object, field: str, aliases: dict[str, str] | None = None) -> str:
    role = _str(value, field, required=True)
    role = (aliases or {}).get(role, role)
    if role not in ROLES:
        raise RecordError(
            field, f"unknown role {role!r}; expected one of {', '.join(sorted(ROLES))}"
        )
    return role


def _require_response(conv: ParsedConversation) -> ParsedConversation:
    if not any(m.role == MessageRole.ASSISTANT for m in conv.messages):
        raise RecordError("messages", "the conversation has no assistant turn to rate")
    return conv


# --- native JSONL and OpenAI chat messages ----------------------------------------------------


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
        occurred_at=_datetime(obj.get("occurred_at"), "occurred_at"),
        line=record.line,
    )
    return [_require_response(conv)]


# --- ShareGPT ---------------------------------------------------------------------------------


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


# --- Anthropic HH-RLHF ------------------------------------------------------------------------

HH_TURN = re.compile(r"\n\n(Human|Assistant): ")
HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def hh_split(text: str, field: str) -> list[tuple[str, str]]:
    """Split an HH transcript into (speaker, text) turns; joining them gives the text back."""
    parts = HH_TURN.split(text)
    if parts[0] != "" or len(parts) < 3:
        raise RecordError(field, "expected a transcript starting with '\\n\\nHuman: '")
    return list(zip(parts[1::2], parts[2::2], strict=True))


def hh_join(turns: list[tuple[str, str]]) -> str:
    return "".join(f"\n\n{speaker}: {text}" for speaker, text in turns)


def parse_hh(record: SourceRecord) -> list[ParsedConversation]:
    """One line, two transcripts that share a context: one conversation, two candidates.

    The candidates start at the first assistant turn where the transcripts part (in the
    source data that is nearly always the final turn; where they part earlier, the rest of
    each transcript is kept verbatim as the candidate's text, so the pair exports back
    byte-identical). Candidate 0 is "chosen" (source rank 0), candidate 1 "rejected".
    """
    obj = _dict(record.value, "record")
    chosen = hh_split(_str(obj.get("chosen"), "chosen", required=True), "chosen")
    rejected = hh_split(_str(obj.get("rejected"), "rejected", required=True), "rejected")
    split = 0
    while split < min(len(chosen), len(rejected)) and chosen[split] == rejected[split]:
        split += 1
    if split == len(chosen) and split == len(rejected):
        raise RecordError("rejected", "is identical to chosen: there is no preference to keep")
    while split > 0 and not (
        split < len(chosen)
        and chosen[split][0] == "Assistant"
        and split < len(rejected)
        and rejected[split][0] == "Assistant"
    ):
        split -= 1
    if chosen[split][0] != "Assistant" or rejected[split][0] != "Assistant":
        raise RecordError("chosen", "the transcripts part before any assistant turn")
    messages = [
        ParsedMessage(position=i, role=HH_ROLES[speaker], content=text)
        for i, (speaker, text) in enumerate(chosen[:split])
    ]
    for candidate, turns in enumerate((chosen[split:], rejected[split:])):
        tail = hh_join(turns)[len("\n\nAssistant: ") :]
        metadata = {"hh_label": ("chosen", "rejected")[candidate]}
        if len(turns) > 1:
            metadata["hh_multi_turn_tail"] = True
        messages.append(
            ParsedMessage(
                position=split,
                candidate=candidate,
                role="assistant",
                content=tail,
                source_rank=candidate,
                metadata=metadata,
            )
        )
    return [ParsedConversation(messages=messages, line=record.line)]


# --- OpenAssistant message trees ---------------------------------------------------------------

OASST_ROLES = {"prompter": "user", "assistant": "assistant"}


def parse_oasst(record: SourceRecord) -> list[ParsedConversation]:
    """A message tree becomes one conversation per prompter message with assistant replies.

    The conversation's context is the path from the root to that prompter message; its
    replies are the candidates, each keeping its consensus rank (0 = best) as source rank.
    Deleted messages are left out. The external id is the prompter message's id.
    """
    obj = _dict(record.value, "record")
    root = _dict(obj.get("prompt"), "prompt")
    if not root:
        raise RecordError("prompt", "is missing")
    tree_id = _id(obj.get("message_tree_id"), "message_tree_id")
    conversations: list[ParsedConversation] = []

    def node_message(node: dict, field: str, position: int, candidate: int = 0) -> ParsedMessage:
        role = OASST_ROLES.get(node.get("role", ""))
        if role is None:
            raise RecordError(
                f"{field}.role", f"expected 'prompter' or 'assistant', got {node.get('role')!r}"
            )
        rank = node.get("rank")
        return ParsedMessage(
            position=position,
            candidate=candidate,
            role=role,
            content=_content(node.get("text"), f"{field}.text"),
            model=_str(node.get("model_name"), f"{field}.model_name")[:255],
            external_id=_id(node.get("message_id"), f"{field}.message_id"),
            source_rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
            metadata={k: node[k] for k in ("lang", "review_count", "synthetic") if k in node},
        )

    def walk(node: dict, field: str, path: list[ParsedMessage]) -> None:
        message = node_message(node, field, len(path))
        message.source_rank = None  # a rank belongs to a candidate, not to context
        here = [*path, message]
        replies = [
            (i, _dict(r, f"{field}.replies[{i}]"))
            for i, r in enumerate(_list(node.get("replies"), f"{field}.replies"))
        ]
        replies = [(i, r) for i, r in replies if not r.get("deleted")]
        if message.role == "user" and replies:
            ordered = sorted(
                replies, key=lambda ir: (ir[1].get("rank") is None, ir[1].get("rank") or 0, ir[0])
            )
            candidates = [
                node_message(r, f"{field}.replies[{i}]", len(here), candidate=c)
                for c, (i, r) in enumerate(ordered)
            ]
            conversations.append(
                ParsedConversation(
                    messages=[*here, *candidates],
                    external_id=message.external_id or None,
                    metadata={"message_tree_id": tree_id} if tree_id else {},
                    line=record.line,
                )
            )
        for i, r in replies:
            walk(r, f"{field}.replies[{i}]", here)

    walk(root, "prompt", [])
    if not conversations:
        raise RecordError("prompt.replies", "the tree has no assistant reply to rate")
    return conversations


# --- CSV ----------------------------------------------------------------------------------------


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
                metadata = _dict(json.loads(row["metadata"]), "metadata")
            except json.JSONDecodeError as exc:
                raise RecordError(
                    "metadata", line=row_no, message=f"malformed JSON: {exc.msg}"
                ) from None
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


PARSERS: dict[str, Callable[[SourceRecord], list[ParsedConversation]]] = {
    SourceFormat.NATIVE: parse_native,
    SourceFormat.OPENAI: parse_native,
    SourceFormat.SHAREGPT: parse_sharegpt,
    SourceFormat.HH_RLHF: parse_hh,
    SourceFormat.OASST: parse_oasst,
    SourceFormat.CSV: parse_csv,
}


def detect_json_format(value: object) -> str | None:
    """Guess the format of a JSONL file from its first record."""
    if not isinstance(value, dict):
        return None
    if "chosen" in value and "rejected" in value:
        return SourceFormat.HH_RLHF
    if "message_tree_id" in value or ("prompt" in value and isinstance(value["prompt"], dict)):
        return SourceFormat.OASST
    if isinstance(value.get("conversations"), list):
        return SourceFormat.SHAREGPT
    if isinstance(value.get("messages"), list):
        native_keys = {"id", "candidates", "metadata", "occurred_at"}
        return SourceFormat.NATIVE if native_keys & value.keys() else SourceFormat.OPENAI
    return None
