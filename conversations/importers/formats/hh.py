"""Anthropic HH-RLHF pairs."""

import re

from conversations.importers.formats.fields import (
    _dict,
    _str,
)
from conversations.importers.records import (
    ParsedConversation,
    ParsedMessage,
    RecordError,
    SourceRecord,
)

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
