"""Source formats: detect one from the first record, and turn records into conversations.

Each parser takes one ``SourceRecord`` and returns the conversations in it (an OpenAssistant
tree holds several), or raises ``RecordError`` naming the field and what was expected.
``fields`` holds the checks every format shares; one module per source: ``chat`` (native,
OpenAI, ShareGPT), ``hh``, ``oasst``, ``csv_rows``.
"""

from collections.abc import Callable

from conversations.importers.formats.chat import (
    FAST_MESSAGE_KEYS,
    parse_native,
    parse_sharegpt,
)
from conversations.importers.formats.csv_rows import parse_csv
from conversations.importers.formats.fields import OPENAI_ROLE_ALIASES, ROLES, record_datetime
from conversations.importers.formats.hh import hh_join, hh_split, parse_hh
from conversations.importers.formats.oasst import parse_oasst
from conversations.importers.records import ParsedConversation, SourceRecord
from conversations.models import SourceFormat

__all__ = [
    "FAST_MESSAGE_KEYS",
    "OPENAI_ROLE_ALIASES",
    "PARSERS",
    "ROLES",
    "record_datetime",
    "detect_json_format",
    "hh_join",
    "hh_split",
    "parse_csv",
    "parse_hh",
    "parse_native",
    "parse_oasst",
    "parse_sharegpt",
]

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
