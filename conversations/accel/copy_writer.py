"""COPY ... FROM STDIN (FORMAT binary) into the conversation tables (PostgreSQL)."""

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection

from conversations.accel.binary import (
    CONVERSATION_COLUMNS,
    COPY_SIGNATURE,
    COPY_TRAILER,
    ID,
    ID_FIELD,
    KB_COLUMNS,
    MESSAGE_COLUMNS,
    MESSAGE_ID_AT,
    copy_bigint,
    copy_integer,
    copy_json,
    copy_smallint,
    copy_text,
    copy_timestamp,
    message_row,
)
from conversations.accel.copy_batches import PackedRows, pack, unpack
from conversations.accel.foreign_keys import set_based_checks_possible
from conversations.importers.records import ParsedConversation
from conversations.importers.writers.base import BaseWriter
from conversations.models import Conversation, ImportJob, KBReference, Message, Project


class CopyRows(NamedTuple):
    """One conversation as binary COPY rows, with ``ID`` for the ids that only
    ``CopyWriter.write`` knows: ``conversation`` is its row (``ID`` for its id), ``messages``
    the pieces that, joined, make its messages' rows (``messages_size`` bytes, ``ID`` for the
    conversation's id at ``id_offsets``; joined only with the whole batch's, by ``pack``),
    ``kb_references`` (the message's position and candidate, row with ``ID`` for the
    message's id)."""

    conversation: bytes
    messages: list[bytes]
    kb_references: tuple[tuple[int, int, bytes], ...]
    id_offsets: tuple[int, ...]
    messages_size: int


class CopyWriter(BaseWriter):
    """COPY ... FROM STDIN (FORMAT binary) into the three tables.

    ``encode`` builds the COPY rows of a conversation (in the parsing process, see
    ``accel.fork``); ``write`` draws the batch's conversation ids from their sequence
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
        return CopyRows(conversation, messages, kb_references, id_offsets, sum(map(len, messages)))

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


def stored_hashes(project_id: int, external_ids: list[str]) -> dict[str, str]:
    """Content hashes of the conversations of ``project_id`` already stored under these ids:
    one array parameter instead of thousands of placeholders."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT external_id, content_hash FROM {Conversation._meta.db_table} "
            "WHERE project_id = %s AND external_id = ANY(%s)",
            [project_id, external_ids],
        )
        return dict(cursor.fetchall())
