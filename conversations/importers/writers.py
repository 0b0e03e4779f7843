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
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection

from conversations.importers.copy_batches import PackedRows, pack, unpack
from conversations.importers.records import ParsedConversation
from conversations.models import Conversation, ImportJob, KBReference, Message, Project

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
MESSAGE_ID_AT = 6  # in a message's row: after the field count and the id's length
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
    parsing process) makes a conversation's payload, ``pack`` a batch of them (there too),
    ``write`` stores the batch's conversations that the importer keeps."""

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

    def pack(self, rows: list[object]) -> object:
        """A batch of what ``encode`` made, as ``write`` takes it; picklable."""
        return rows

    @abstractmethod
    def write(self, packed, keep: Sequence[int]) -> None:
        """Insert conversations ``keep`` (indexes, ascending) of a batch ``pack`` made."""


def foreign_keys() -> set[tuple[str, str, str]]:
    """The foreign keys of the tables the COPY writer fills, as (table, column, referenced
    table): the references whose set-based checking ``CopyWriter`` describes."""
    conversation, message = Conversation._meta.db_table, Message._meta.db_table
    return {
        (conversation, "project_id", Project._meta.db_table),
        (conversation, "import_job_id", ImportJob._meta.db_table),
        (conversation, "author_id", get_user_model()._meta.db_table),
        (message, "conversation_id", conversation),
        (KBReference._meta.db_table, "message_id", message),
    }


def set_based_checks_possible(cursor) -> bool:
    """Whether this session may skip the per-row foreign-key checks of its COPYs: its role
    may set ``session_replication_role``, and the tables have the foreign keys
    ``foreign_keys`` lists and no trigger besides those foreign keys' own."""
    if connection.pg_version >= 150000:
        cursor.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
    else:  # before PostgreSQL 15, only a superuser may
        cursor.execute("SELECT current_setting('is_superuser') = 'on'")
    if not cursor.fetchone()[0]:
        return False
    tables = sorted({table for table, _, _ in foreign_keys()})
    cursor.execute(
        "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text "
        "FROM pg_constraint c JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
        "WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[])",
        [tables],
    )
    found = {tuple(row) for row in cursor.fetchall()}
    cursor.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = ANY(%s::regclass[]) AND NOT tgisinternal",
        [tables],
    )
    return found == foreign_keys() and cursor.fetchone()[0] == 0


class CopyRows(NamedTuple):
    """One conversation as binary COPY rows, with ``ID`` for the ids that only
    ``CopyWriter.write`` knows: ``conversation`` is its row (``ID`` for its id), ``messages``
    its messages' rows (``ID`` for the conversation's id, at ``id_offsets``),
    ``kb_references`` (the message's position and candidate, row with ``ID`` for the
    message's id)."""

    conversation: bytes
    messages: bytes
    kb_references: tuple[tuple[int, int, bytes], ...]
    id_offsets: tuple[int, ...]


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

    Foreign keys, two ways (``settings.IMPORT_FOREIGN_KEYS``; docs/architecture.md):

    - set-based (the default where the database role may set ``session_replication_role``:
      a superuser, or on PostgreSQL 15+ a role granted ``SET ON PARAMETER``): the rows'
      references hold by how they are made, and PostgreSQL's per-row checks, about 40% of
      the database's work in an import, are skipped for the COPYs alone. Each message refers
      to a conversation id drawn from the sequence and inserted by the same ``write``, each
      KB reference to a message id read back in this transaction: rows no other transaction
      can see, let alone delete. The rows every conversation refers to (project, import job,
      author) are checked once and locked ``FOR KEY SHARE`` by ``begin``, as the per-row
      checks would have locked them. ``session_replication_role`` is ``replica`` (no row
      triggers) only inside a ``write`` (``SET LOCAL``, so a rollback restores it too), and
      only while the three tables have exactly the foreign keys ``foreign_keys`` lists and
      no trigger of their own: a schema that gains either falls back to per-row checks.
    - per-row (otherwise, or with the setting ``triggers``): the foreign keys (deferred to
      the commit, as Django declares them) are checked at the end of each COPY instead, for
      this transaction only (``SET CONSTRAINTS ... IMMEDIATE``, set back to deferred by
      ``finish``; a rollback restores it anyway). The checks are the same, but they overlap
      with the parsing of the next batch and find the rows they look up still in the cache;
      at the commit, a large import's checks ran on their own and slowed down with its size.
    """

    background = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        connection.ensure_connection()
        self.raw = connection.connection
        self.sequences: dict[str, str] = {}
        self.foreign_keys = ""
        self.set_based = False
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
        with self.raw.cursor() as cursor:
            if settings.IMPORT_FOREIGN_KEYS == "auto" and set_based_checks_possible(cursor):
                self.hold_referenced_rows(cursor)
                self.set_based = True
                return
            cursor.execute(
                "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.conname) "
                "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE c.contype = 'f' AND c.condeferrable AND c.condeferred "
                "AND c.conrelid = ANY(%s::regclass[]) ORDER BY 1",
                [[m._meta.db_table for m in (Conversation, Message, KBReference)]],
            )
            self.foreign_keys = ", ".join(r[0] for r in cursor.fetchall())
            if self.foreign_keys:
                cursor.execute(f"SET CONSTRAINTS {self.foreign_keys} IMMEDIATE")

    def hold_referenced_rows(self, cursor) -> None:
        """Check that the project, import job and author exist, and lock them ``FOR KEY
        SHARE`` until the commit: what the per-row checks of the conversations' foreign keys
        do, once instead of three times per conversation."""
        for model, pk in (
            (Project, self.project_id),
            (ImportJob, self.import_job_id),
            (get_user_model(), self.author_id),
        ):
            if pk is None:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR KEY SHARE", [pk])
            if cursor.fetchone() is None:
                raise IntegrityError(
                    f"the conversations would refer to {model._meta.verbose_name} {pk}, "
                    "which does not exist"
                )

    def finish(self) -> None:
        if self.foreign_keys:
            with self.raw.cursor() as cursor:
                cursor.execute(f"SET CONSTRAINTS {self.foreign_keys} DEFERRED")

    def encode(self, conv: ParsedConversation, external_id: str, digest: str) -> CopyRows:
        messages, kb_references, id_offsets, size = [], [], [], 0
        for m in conv.messages:
            row = message_row(
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
            messages.append(row)
            id_offsets.append(size + MESSAGE_ID_AT)
            size += len(row)
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
            tuple(id_offsets),
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
        id_offsets: tuple[int, ...],
        kb_references: tuple[tuple[int, int, bytes], ...] = (),
    ) -> CopyRows:
        """The ``CopyRows`` of a conversation from its fields and its messages' rows (the
        pieces that, joined, make them; ``id_offsets``: where its id goes in them)."""
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
        return CopyRows(conversation, b"".join(messages), kb_references, id_offsets)

    def _ids(self, cursor, table: str, n: int) -> list[int]:
        sequence = self.sequences.get(table)
        if sequence is None:  # looked up once: per row it costs more than the row itself
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = self.sequences[table] = cursor.fetchone()[0]
        cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, n])
        return [r[0] for r in cursor.fetchall()]

    def pack(self, rows: list[CopyRows]) -> PackedRows:
        return pack(rows)

    def write(self, packed: PackedRows, keep: Sequence[int]) -> None:
        if not keep:
            return
        with self.raw.cursor() as cursor:
            ids = self._ids(cursor, Conversation._meta.db_table, len(keep))
            rows = unpack(packed, keep, ids)
            if self.set_based:  # back to "origin" at the end; after an error, by the rollback
                cursor.execute("SET LOCAL session_replication_role = replica")
            self._copy(cursor, Conversation, CONVERSATION_COLUMNS, rows.conversations)
            self._copy(cursor, Message, MESSAGE_COLUMNS, rows.messages)
            if rows.kb_references:
                self.write_kb_references(cursor, rows.kb_references)
            if self.set_based:
                cursor.execute("SET LOCAL session_replication_role = origin")

    @staticmethod
    def _copy(cursor, model, columns: str, data: bytes | bytearray) -> None:
        with cursor.copy(
            f"COPY {model._meta.db_table} ({columns}) FROM STDIN (FORMAT binary)"
        ) as copy:
            copy.write(COPY_SIGNATURE)
            # psycopg sends a large buffer in slices: a memoryview's cost no copy
            copy.write(memoryview(data))
            copy.write(COPY_TRAILER)

    def write_kb_references(
        self, cursor, rows: list[tuple[tuple[tuple[int, int, bytes], ...], int]]
    ) -> None:
        """KB references (of conversations, with their ids): their messages' ids are read
        back."""
        cursor.execute(
            f"SELECT conversation_id, position, candidate, id FROM {Message._meta.db_table} "
            "WHERE conversation_id = ANY(%s)",
            [[conv_id for _, conv_id in rows]],
        )
        message_ids = {(c, p, k): i for c, p, k, i in cursor.fetchall()}
        self._copy(
            cursor,
            KBReference,
            KB_COLUMNS,
            b"".join(
                row.replace(ID, message_ids[conv_id, pos, cand].to_bytes(8), 1)
                for references, conv_id in rows
                for pos, cand, row in references
            ),
        )


class OrmWriter(BaseWriter):
    """bulk_create, for databases without COPY (the embedded SQLite default)."""

    def encode(
        self, conv: ParsedConversation, external_id: str, digest: str
    ) -> tuple[ParsedConversation, str, str]:
        return conv, external_id, digest

    def write(self, packed: list[tuple[ParsedConversation, str, str]], keep: Sequence[int]) -> None:
        if not keep:
            return
        rows = [packed[i] for i in keep]
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
