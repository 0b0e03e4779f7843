"""What every format checks: one field at a time, each error naming the field and what was
expected; the roles each source may use."""

from datetime import datetime

from django.utils.dateparse import parse_datetime

from conversations.importers.records import (
    KBRef,
    ParsedConversation,
    RecordError,
)
from conversations.models import MessageRole

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


def record_datetime(value: object, field: str) -> datetime | None:
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
