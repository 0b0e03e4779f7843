"""The parsed, validated shape of one conversation, independent of the source format."""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


class RecordError(Exception):
    """One record is invalid: ``field`` names where, the message says what was expected."""

    def __init__(self, field: str, message: str, line: int | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.line = line  # where a multi-line record (CSV rows) went wrong, if not its first


@dataclass(slots=True)
class KBRef:
    article_id: str
    title: str = ""
    url: str = ""
    version: str = ""
    snippet: str = ""


@dataclass(slots=True)
class ParsedMessage:
    position: int
    role: str
    content: str
    candidate: int = 0
    name: str = ""
    model: str = ""
    external_id: str = ""
    source_rank: int | None = None
    metadata: dict = field(default_factory=dict)
    kb_references: list[KBRef] = field(default_factory=list)


@dataclass(slots=True)
class ParsedConversation:
    messages: list[ParsedMessage]
    external_id: str | None = None
    metadata: dict = field(default_factory=dict)
    occurred_at: datetime | None = None
    line: int = 0

    def content_hash(self) -> str:
        """A digest of what a rater sees and what a trainer gets: roles, contents, candidates,
        models and KB references (not free metadata). Same content, same hash."""
        h = hashlib.sha256()
        for m in self.messages:
            h.update(
                f"{m.position}\x1f{m.candidate}\x1f{m.role}\x1f{m.name}\x1f{m.model}\x1f".encode()
            )
            h.update(m.content.encode("utf-8", "surrogatepass"))
            for ref in m.kb_references:
                h.update(f"\x1d{ref.article_id}\x1f{ref.version}\x1f{ref.snippet}".encode())
            h.update(b"\x1e")
        return h.hexdigest()


@dataclass(slots=True)
class SourceRecord:
    """One record as read from a file: its line (or CSV row) and raw value."""

    line: int
    value: object
    raw: bytes = b""
    label: str = "line"  # "line" for JSONL, "row" for CSV
    # the value holds nothing safe_json refuses (else safe_json.check it before use)
    checked: bool = False
