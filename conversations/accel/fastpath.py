"""The common native record straight to COPY rows, without the intermediate objects.

Most records of a native (or OpenAI) file are plain: string contents and names, no
candidates and no KB references. ``native_copy_rows`` turns such a record into its external
id, content hash and COPY rows in one pass, without building ``ParsedMessage`` objects; each
content is encoded to UTF-8 once, for the hash and the row. For
anything else it returns None, and the record takes the general path (``safe_json.check``,
``parse_native``, ``ParsedConversation.content_hash``, ``CopyWriter.encode``), which also
names the field of any error. That includes what ``safe_json`` refuses in the fields this
path stores (a NUL character; metadata nested too deep), found here without a walk of the
record: a NUL in a string, in the encoded metadata, or more brackets in it than the depth
limit leaves room for. For every record it accepts, the result is byte for byte what the
general path gives; the tests hold the two together.
"""

import hashlib
from collections.abc import Callable

import orjson
from django.conf import settings

from conversations.accel.binary import (
    EMPTY_JSON,
    ID,
    MESSAGE_ID_AT,
    MESSAGE_START,
    length_field,
    message_row,
)
from conversations.accel.copy_writer import CopyRows, CopyWriter
from conversations.importers.formats import (
    FAST_MESSAGE_KEYS,
    OPENAI_ROLE_ALIASES,
    ROLES,
    record_datetime,
)
from conversations.importers.records import RecordError
from conversations.importers.writers.base import BaseWriter
from conversations.models import MessageRole, SourceFormat

ROLE_BYTES = {role: role.encode() for role in ROLES}
ASSISTANT = str(MessageRole.ASSISTANT)
# The common message (no name, model, id or metadata): after its position, candidate 0 and
# role, its COPY row ends with these fields, and its hashed header is "<position>" + this.
PLAIN_ROLE_FIELD = {role: b"%s%s" % (length_field(len(b)), b) for role, b in ROLE_BYTES.items()}
PLAIN_TAIL = message_row(0, 0, b"", b"", b"", b"", b"", None, EMPTY_JSON)[-(3 * 4 + 4 + 7) :]
PLAIN_HASH = {role: b"\x1f0\x1f%s\x1f\x1f\x1f" % b for role, b in ROLE_BYTES.items()}
# a common message's row is this long, plus its role field and its content
PLAIN_FIXED = len(MESSAGE_START(10, 8, ID, 4, 0, 2, 0)) + 4 + len(PLAIN_TAIL)
FastPath = Callable[[object, int], tuple[str, str, CopyRows] | None]


def _json_field(value: dict | None, room: int) -> bytes | None:
    """``copy_json(value)``, or None when the general path must look: the value holds a NUL
    character, may nest deeper than ``room`` more levels, or orjson cannot encode it."""
    if not value:
        return EMPTY_JSON
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:  # e.g. nested beyond orjson's limit
        return None
    if b"\\u0000" in data or (len(data) > room and data.count(b"[") + data.count(b"{") > room):
        return None
    return length_field(len(data) + 1) + b"\x01" + data


def native_copy_rows(
    writer: CopyWriter, value: object, line: int, max_depth: int | None = None
) -> tuple[str, str, CopyRows] | None:
    """(external id, content hash, COPY rows) of a plain native record, or None."""
    if type(value) is not dict:
        return None
    if max_depth is None:
        max_depth = settings.IMPORT_MAX_JSON_DEPTH
    raw_messages = value.get("messages")
    candidates = value.get("candidates")
    external_id = value.get("id")
    metadata = value.get("metadata")
    if (
        type(raw_messages) is not list
        or not raw_messages
        or not (candidates is None or candidates == [])
        or not (
            external_id is None
            or (type(external_id) is str and len(external_id) <= 255 and "\x00" not in external_id)
        )
        or not (metadata is None or type(metadata) is dict)
    ):
        return None
    metadata_field = _json_field(metadata, max_depth - 1)  # (the record is level 1)
    if metadata_field is None:
        return None
    try:
        occurred_at = record_datetime(value.get("occurred_at"), "occurred_at")
    except RecordError:
        return None
    hashed: list[bytes] = []  # what ParsedConversation.content_hash digests, in pieces
    rows: list[bytes] = []  # pieces of the messages' rows
    id_offsets: list[int] = []  # where each row's conversation id goes
    size = 0
    has_response = False
    try:
        for position, item in enumerate(raw_messages):
            if type(item) is not dict or not item.keys() <= FAST_MESSAGE_KEYS:
                return None
            role, content = item.get("role"), item.get("content")
            if type(role) is not str or type(content) is not str:
                return None
            role = OPENAI_ROLE_ALIASES.get(role, role)
            if role not in ROLES or not content or content.isspace():
                # (isspace: what the general path calls empty, nothing after strip())
                return None
            has_response = has_response or role == ASSISTANT
            data = content.encode()  # lone surrogates raise: the general path deals with them
            if len(item) == 2:  # role and content only: the common message, in fewer steps
                hashed += (b"%d" % position, PLAIN_HASH[role], data, b"\x1e")
                role_field = PLAIN_ROLE_FIELD[role]
                rows += (
                    MESSAGE_START(10, 8, ID, 4, position, 2, 0),
                    role_field,
                    length_field(len(data)),
                    data,
                    PLAIN_TAIL,
                )
                id_offsets.append(size + MESSAGE_ID_AT)
                size += PLAIN_FIXED + len(role_field) + len(data)
                continue
            name, model = item.get("name", ""), item.get("model", "")
            message_id, message_metadata = item.get("id", ""), item.get("metadata")
            if (
                type(name) is not str
                or type(model) is not str
                or type(message_id) is not str
                or len(message_id) > 255
                or not (message_metadata is None or type(message_metadata) is dict)
                or "\x00" in message_id
            ):
                return None
            # (the record, messages, the message: 3 levels)
            message_metadata_field = _json_field(message_metadata, max_depth - 3)
            if message_metadata_field is None:
                return None
            role_bytes = ROLE_BYTES[role]
            name = name[:255].encode() if name else b""
            model = model[:255].encode() if model else b""
            hashed += (b"%d\x1f0\x1f%s\x1f%s\x1f%s\x1f" % (position, role_bytes, name, model), data)
            hashed.append(b"\x1e")
            row = message_row(
                position,
                0,
                role_bytes,
                data,
                name,
                model,
                message_id.encode() if message_id else b"",
                None,
                message_metadata_field,
            )
            rows.append(row)
            id_offsets.append(size + MESSAGE_ID_AT)
            size += len(row)
    except UnicodeEncodeError:
        return None
    if not has_response:
        return None
    hashed_bytes = b"".join(hashed)
    if b"\x00" in hashed_bytes:  # in a content, name or model: one search for them all
        return None
    digest = hashlib.sha256(hashed_bytes).hexdigest()
    external_id = external_id or f"sha256:{digest}"
    return (
        external_id,
        digest,
        writer.rows(
            external_id, digest, line, occurred_at, metadata_field, rows, tuple(id_offsets)
        ),
    )


def fast_path(fmt: str, writer: BaseWriter) -> FastPath | None:
    """The fast path for this format and writer, if there is one."""
    if isinstance(writer, CopyWriter) and fmt in (SourceFormat.NATIVE, SourceFormat.OPENAI):
        max_depth = settings.IMPORT_MAX_JSON_DEPTH
        return lambda value, line: native_copy_rows(writer, value, line, max_depth)
    return None
