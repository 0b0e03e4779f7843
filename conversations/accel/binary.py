"""PostgreSQL's binary COPY format: the columns the COPY writer fills and the bytes of each
field and of a message's row."""

import json
import struct
from datetime import UTC, datetime, timedelta

import orjson

# Per-conversation columns first, then the ones every row of an import shares.
CONVERSATION_COLUMNS = (
    "id, external_id, content_hash, source_line, occurred_at, metadata, "
    "project_id, source_format, source_name, author_id, import_job_id, created_at"
)
# no id: messages take theirs from the column's own sequence, inside the COPY
MESSAGE_COLUMNS = (
    "conversation_id, position, candidate, role, content, name, model, external_id, "
    "source_rank, metadata"
)
KB_COLUMNS = "message_id, position, article_id, title, url, version, snippet"

# COPY's binary format: a signature, then per row the number of fields and each field as its
# length (-1 for NULL) and its bytes (text as UTF-8, integers big-endian, timestamps as
# microseconds since 2000, jsonb as version 1 and the JSON text), then a trailer. Text needs
# no escaping, and PostgreSQL reads the rows without parsing numbers or unescaping text.
# Each integer's width is its column's: bigint ids (the user's id, author_id, is an integer),
# integer position and source_line, smallint candidate, source_rank and KB position. A column
# whose type changes makes the COPY fail ("incorrect binary data format"), never misread.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"
# An id (bigint) that only ``CopyWriter.write`` knows. No other field can hold these bytes:
# text is UTF-8, which never contains 0xff, and no integer or timestamp of these rows is
# negative, except a timestamp a microsecond before 2000 (so a conversation's row has its id
# replaced first, and only once).
ID = b"\xff" * 8
ID_FIELD = b"\x00\x00\x00\x08" + ID
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
length_field = struct.Struct(">i").pack
_int2 = struct.Struct(">ih").pack
_int4 = struct.Struct(">ii").pack
_int8 = struct.Struct(">iq").pack
# field count, conversation id, position (integer), candidate (smallint)
MESSAGE_START = struct.Struct(">hi8siiih").pack
MESSAGE_ID_AT = 6  # in a message's row: after the field count and the id's length
EMPTY_JSON = length_field(3) + b"\x01{}"


def json_text(value: dict) -> str:
    """A JSON column's value as text (orjson, or the standard library for what it refuses)."""
    if not value:
        return "{}"
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson cannot encode (e.g. integer keys) the standard library can
        return json.dumps(value, ensure_ascii=False)


def copy_text(value: str) -> bytes:
    data = value.encode()
    return length_field(len(data)) + data


def copy_json(value: dict | None) -> bytes:
    """A jsonb field: ``json_text(value)``, without the round trip through str."""
    if not value:
        return EMPTY_JSON
    try:
        data = orjson.dumps(value)
    except TypeError:
        data = json_text(value).encode()
    return length_field(len(data) + 1) + b"\x01" + data


def copy_smallint(value: int | None) -> bytes:
    return NULL if value is None else _int2(2, value)


def copy_integer(value: int | None) -> bytes:
    return NULL if value is None else _int4(4, value)


def copy_bigint(value: int | None) -> bytes:
    return NULL if value is None else _int8(8, value)


def copy_timestamp(value: datetime | None) -> bytes:
    if value is None:
        return NULL
    return _int8(8, (value - PG_EPOCH) // timedelta(microseconds=1))


def message_row(
    position: int,
    candidate: int,
    role: bytes,
    content: bytes,
    name: bytes,
    model: bytes,
    external_id: bytes,
    source_rank: int | None,
    metadata: bytes,
) -> bytes:
    """A message's COPY row (``MESSAGE_COLUMNS``) from its text as UTF-8 and its metadata as
    ``copy_json`` gives it; ``ID`` stands for the conversation's id."""
    return b"".join(
        (
            MESSAGE_START(10, 8, ID, 4, position, 2, candidate),
            length_field(len(role)),
            role,
            length_field(len(content)),
            content,
            length_field(len(name)),
            name,
            length_field(len(model)),
            model,
            length_field(len(external_id)),
            external_id,
            copy_smallint(source_rank),
            metadata,
        )
    )
