"""The common native record straight to COPY rows, without the intermediate objects.

Most records of a native (or OpenAI) file are plain: string contents and names, no
candidates and no KB references. ``native_copy_rows`` turns such a record into its external
id, content hash and COPY rows in one pass, without building ``ParsedMessage`` objects; each
content is encoded to UTF-8 once, for the hash and the row. For
anything else it returns None, and the record takes the general path (``parse_native``,
``ParsedConversation.content_hash``, ``CopyWriter.encode``), which also names the field of
any error. For every record it accepts, the result is byte for byte what the general path
gives; the tests hold the two together.
"""

import hashlib
from collections.abc import Callable

from conversations.importers.formats import (
    FAST_MESSAGE_KEYS,
    OPENAI_ROLE_ALIASES,
    ROLES,
    _datetime,
)
from conversations.importers.records import RecordError
from conversations.importers.writers import (
    EMPTY_JSON,
    BaseWriter,
    CopyRows,
    CopyWriter,
    copy_json,
    message_row,
)
from conversations.models import MessageRole, SourceFormat

ROLE_BYTES = {role: role.encode() for role in ROLES}
FastPath = Callable[[object, int], tuple[str, str, CopyRows] | None]


def native_copy_rows(
    writer: CopyWriter, value: object, line: int
) -> tuple[str, str, CopyRows] | None:
    """(external id, content hash, COPY rows) of a plain native record, or None."""
    if type(value) is not dict:
        return None
    raw_messages = value.get("messages")
    candidates = value.get("candidates")
    external_id = value.get("id")
    metadata = value.get("metadata")
    if (
        type(raw_messages) is not list
        or not raw_messages
        or not (candidates is None or candidates == [])
        or not (external_id is None or (type(external_id) is str and len(external_id) <= 255))
        or not (metadata is None or type(metadata) is dict)
    ):
        return None
    try:
        occurred_at = _datetime(value.get("occurred_at"), "occurred_at")
    except RecordError:
        return None
    hashed: list[bytes] = []  # what ParsedConversation.content_hash digests, in pieces
    rows: list[bytes] = []
    has_response = False
    try:
        for position, item in enumerate(raw_messages):
            if type(item) is not dict or not item.keys() <= FAST_MESSAGE_KEYS:
                return None
            role, content = item.get("role"), item.get("content")
            if type(role) is not str or type(content) is not str:
                return None
            role = OPENAI_ROLE_ALIASES.get(role, role)
            name, model = item.get("name", ""), item.get("model", "")
            message_id, message_metadata = item.get("id", ""), item.get("metadata")
            if (
                role not in ROLES
                or not content
                or content.isspace()  # what the general path calls empty: nothing after strip()
                or type(name) is not str
                or type(model) is not str
                or type(message_id) is not str
                or len(message_id) > 255
                or not (message_metadata is None or type(message_metadata) is dict)
            ):
                return None
            has_response = has_response or role == MessageRole.ASSISTANT
            role_bytes = ROLE_BYTES[role]
            name = name[:255].encode() if name else b""
            model = model[:255].encode() if model else b""
            data = content.encode()  # lone surrogates raise: the general path deals with them
            hashed += (b"%d\x1f0\x1f%s\x1f%s\x1f%s\x1f" % (position, role_bytes, name, model), data)
            hashed.append(b"\x1e")
            rows.append(
                message_row(
                    position,
                    0,
                    role_bytes,
                    data,
                    name,
                    model,
                    message_id.encode() if message_id else b"",
                    None,
                    copy_json(message_metadata) if message_metadata else EMPTY_JSON,
                )
            )
    except UnicodeEncodeError:
        return None
    if not has_response:
        return None
    digest = hashlib.sha256(b"".join(hashed)).hexdigest()
    external_id = external_id or f"sha256:{digest}"
    return (
        external_id,
        digest,
        writer.rows(external_id, digest, line, occurred_at, copy_json(metadata), rows),
    )


def fast_path(fmt: str, writer: BaseWriter) -> FastPath | None:
    """The fast path for this format and writer, if there is one."""
    if isinstance(writer, CopyWriter) and fmt in (SourceFormat.NATIVE, SourceFormat.OPENAI):
        return lambda value, line: native_copy_rows(writer, value, line)
    return None
