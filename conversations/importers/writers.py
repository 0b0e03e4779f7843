"""Write validated conversations: PostgreSQL COPY where available, the ORM elsewhere.

Both writers run inside the caller's transaction, so an import that fails leaves nothing.
"""

import json
import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
from django.db import connection

from conversations.importers.records import ParsedConversation
from conversations.models import Conversation, KBReference, Message

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
_length = struct.Struct(">i").pack
_int2 = struct.Struct(">ih").pack
_int4 = struct.Struct(">ii").pack
_int8 = struct.Struct(">iq").pack
# field count, conversation id, position (integer), candidate (smallint)
_MESSAGE_START = struct.Struct(">hi8siiih").pack
EMPTY_JSON = _length(3) + b"\x01{}"


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
    return _length(len(data)) + data


def copy_json(value: dict | None) -> bytes:
    """A jsonb field: ``json_text(value)``, without the round trip through str."""
    if not value:
        return EMPTY_JSON
    try:
        data = orjson.dumps(value)
    except TypeError:
        data = json_text(value).encode()
    return _length(len(data) + 1) + b"\x01" + data


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
            _MESSAGE_START(10, 8, ID, 4, position, 2, candidate),
            _length(len(role)),
            role,
            _length(len(content)),
            content,
            _length(len(name)),
            name,
            _length(len(model)),
            model,
            _length(len(external_id)),
            external_id,
            copy_smallint(source_rank),
            metadata,
        )
    )


class BaseWriter(ABC):
    """Turns validated conversations into rows: ``encode`` (no database; it may run in the
    parsing process) makes a conversation's payload, ``write`` stores a batch of them."""

    background = False  # may write() run in a helper thread, and encode() in another process?

    def __init__(
        self,
        *,
        project_id: int,
        source_format: str,
        source_name: str,
        import_job_id: int | None,
        author_id: int | None,
        now: datetime,
    ):
        self.project_id = project_id
        self.source_format = source_format
        self.source_name = source_name[:255]
        self.import_job_id = import_job_id
        self.author_id = author_id
        self.now = now

    def begin(self) -> None:
        """Called once, in the import's transaction, before the first ``write``."""
        return None

    def finish(self) -> None:
        """Called once after the last ``write`` of an import that is going to be committed."""
        return None

    @abstractmethod
    def encode(self, conv: ParsedConversation, external_id: str, digest: str) -> object:
        """What ``write`` needs of this conversation; picklable."""

    @abstractmethod
    def write(self, rows: Sequence[object]) -> None:
        """Insert these conversations (what ``encode`` made of each)."""


class CopyRows(NamedTuple):
    """One conversation as binary COPY rows, with ``ID`` for the ids that only
    ``CopyWriter.write`` knows: ``conversation`` is its row (``ID`` for its id), ``messages``
    its messages' rows (``ID`` for the conversation's id), ``kb_references`` (the message's
    position and candidate, row with ``ID`` for the message's id)."""

    conversation: bytes
    messages: bytes
    kb_references: tuple[tuple[int, int, bytes], ...]


class CopyWriter(BaseWriter):
    """COPY ... FROM STDIN (FORMAT binary) into the three tables.

    ``encode`` builds the COPY rows of a conversation (in the parsing process, see
    ``importers.pipeline``); ``write`` draws the batch's conversation ids from their sequence
    in one query, puts them in and sends the rows. Messages take their ids from their
    column's default during the COPY (no round trip for them); the few KB references read
    their messages' ids back. It writes through the psycopg connection under Django's (the
    same transaction), so it may run in a helper thread while the importer handles the next
    batch; psycopg serialises use of the connection, and the importer waits for a write
    before its next query.

    The foreign keys of the three tables (deferred to the commit, as Django declares them)
    are checked at the end of each COPY instead, for this transaction only (``SET
    CONSTRAINTS ... IMMEDIATE``, set back to deferred by ``finish``; a rollback restores it
    anyway). The checks are the same, but they overlap with the parsing of the next batch
    and find the rows they look up still in the cache; at the commit, a large import's checks
    ran on their own and slowed down with its size.
    """

    background = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        connection.ensure_connection()
        self.raw = connection.connection
        self.sequences: dict[str, str] = {}
        self.foreign_keys = ""
        self.shared = b"".join(
            (
                copy_bigint(self.project_id),
                copy_text(self.source_format),
                copy_text(self.source_name),
                copy_integer(self.author_id),
                copy_bigint(self.import_job_id),
                copy_timestamp(self.now),
            )
        )

    def begin(self) -> None:
        tables = [m._meta.db_table for m in (Conversation, Message, KBReference)]
        with self.raw.cursor() as cursor:
            cursor.execute(
                "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.conname) "
                "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE c.contype = 'f' AND c.condeferrable AND c.condeferred "
                "AND c.conrelid = ANY(%s::regclass[]) ORDER BY 1",
                [tables],
            )
            self.foreign_keys = ", ".join(r[0] for r in cursor.fetchall())
            if self.foreign_keys:
                cursor.execute(f"SET CONSTRAINTS {self.foreign_keys} IMMEDIATE")

    def finish(self) -> None:
        if self.foreign_keys:
            with self.raw.cursor() as cursor:
                cursor.execute(f"SET CONSTRAINTS {self.foreign_keys} DEFERRED")

    def encode(self, conv: ParsedConversation, external_id: str, digest: str) -> CopyRows:
        messages, kb_references = [], []
        for m in conv.messages:
            messages.append(
                message_row(
                    m.position,
                    m.candidate,
                    m.role.encode(),
                    m.content.encode(),
                    m.name.encode(),
                    m.model.encode(),
                    m.external_id.encode(),
                    m.source_rank,
                    copy_json(m.metadata),
                )
            )
            for pos, ref in enumerate(m.kb_references):
                row = b"".join(
                    (
                        b"\x00\x07",  # fields
                        ID_FIELD,
                        copy_smallint(pos),
                        copy_text(ref.article_id),
                        copy_text(ref.title),
                        copy_text(ref.url),
                        copy_text(ref.version),
                        copy_text(ref.snippet),
                    )
                )
                kb_references.append((m.position, m.candidate, row))
        return self.rows(
            external_id,
            digest,
            conv.line,
            conv.occurred_at,
            copy_json(conv.metadata),
            messages,
            tuple(kb_references),
        )

    def rows(
        self,
        external_id: str,
        digest: str,
        line: int,
        occurred_at: datetime | None,
        metadata: bytes,
        messages: list[bytes],
        kb_references: tuple[tuple[int, int, bytes], ...] = (),
    ) -> CopyRows:
        """The ``CopyRows`` of a conversation from its fields and its messages' rows."""
        conversation = b"".join(
            (
                b"\x00\x0c",  # fields
                ID_FIELD,
                copy_text(external_id),
                copy_text(digest),
                copy_integer(line or None),
                copy_timestamp(occurred_at),
                metadata,
                self.shared,
            )
        )
        return CopyRows(conversation, b"".join(messages), kb_references)

    def _ids(self, cursor, table: str, n: int) -> list[int]:
        sequence = self.sequences.get(table)
        if sequence is None:  # looked up once: per row it costs more than the row itself
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = self.sequences[table] = cursor.fetchone()[0]
        cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, n])
        return [r[0] for r in cursor.fetchall()]

    def write(self, rows: Sequence[CopyRows]) -> None:
        if not rows:
            return
        with self.raw.cursor() as cursor:
            conv_ids = [
                i.to_bytes(8) for i in self._ids(cursor, Conversation._meta.db_table, len(rows))
            ]
            self._copy(
                cursor,
                Conversation,
                CONVERSATION_COLUMNS,
                [r.conversation.replace(ID, i, 1) for r, i in zip(rows, conv_ids, strict=True)],
            )
            self._copy(
                cursor,
                Message,
                MESSAGE_COLUMNS,
                [r.messages.replace(ID, i) for r, i in zip(rows, conv_ids, strict=True)],
            )
            with_kb = [(r, i) for r, i in zip(rows, conv_ids, strict=True) if r.kb_references]
            if with_kb:
                self.write_kb_references(cursor, with_kb)

    @staticmethod
    def _copy(cursor, model, columns: str, data: list[bytes]) -> None:
        with cursor.copy(
            f"COPY {model._meta.db_table} ({columns}) FROM STDIN (FORMAT binary)"
        ) as copy:
            copy.write(b"".join([COPY_SIGNATURE, *data, COPY_TRAILER]))

    def write_kb_references(self, cursor, rows: list[tuple[CopyRows, bytes]]) -> None:
        """The KB references of these (conversation, id): their messages' ids are read back."""
        cursor.execute(
            f"SELECT conversation_id, position, candidate, id FROM {Message._meta.db_table} "
            "WHERE conversation_id = ANY(%s)",
            [[int.from_bytes(conv_id) for _, conv_id in rows]],
        )
        message_ids = {(c, p, k): i for c, p, k, i in cursor.fetchall()}
        self._copy(
            cursor,
            KBReference,
            KB_COLUMNS,
            [
                row.replace(ID, message_ids[int.from_bytes(conv_id), pos, cand].to_bytes(8), 1)
                for r, conv_id in rows
                for pos, cand, row in r.kb_references
            ],
        )


class OrmWriter(BaseWriter):
    """bulk_create, for databases without COPY (the embedded SQLite default)."""

    def encode(
        self, conv: ParsedConversation, external_id: str, digest: str
    ) -> tuple[ParsedConversation, str, str]:
        return conv, external_id, digest

    def write(self, rows: Sequence[tuple[ParsedConversation, str, str]]) -> None:
        if not rows:
            return
        conversations = Conversation.objects.bulk_create(
            [
                Conversation(
                    project_id=self.project_id,
                    external_id=external_id,
                    content_hash=digest,
                    source_format=self.source_format,
                    source_name=self.source_name,
                    source_line=conv.line or None,
                    occurred_at=conv.occurred_at,
                    author_id=self.author_id,
                    import_job_id=self.import_job_id,
                    metadata=conv.metadata,
                )
                for conv, external_id, digest in rows
            ]
        )
        messages, refs = [], []
        for (conv, _, _), saved in zip(rows, conversations, strict=True):
            for m in conv.messages:
                messages.append(
                    Message(
                        conversation_id=saved.pk,
                        position=m.position,
                        candidate=m.candidate,
                        role=m.role,
                        content=m.content,
                        name=m.name,
                        model=m.model,
                        external_id=m.external_id,
                        source_rank=m.source_rank,
                        metadata=m.metadata,
                    )
                )
                refs.append(m.kb_references)
        Message.objects.bulk_create(messages)
        KBReference.objects.bulk_create(
            [
                KBReference(message_id=msg.pk, position=pos, **asdict(ref))
                for msg, msg_refs in zip(messages, refs, strict=True)
                for pos, ref in enumerate(msg_refs)
            ]
        )


def writer_class() -> type[BaseWriter]:
    return CopyWriter if connection.vendor == "postgresql" else OrmWriter
