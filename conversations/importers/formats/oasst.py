"""OpenAssistant message trees."""

from conversations.importers.formats.fields import (
    _content,
    _dict,
    _id,
    _list,
    _str,
)
from conversations.importers.records import (
    ParsedConversation,
    ParsedMessage,
    RecordError,
    SourceRecord,
)

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
