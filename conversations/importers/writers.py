"""Write validated conversations: PostgreSQL COPY where available, the ORM elsewhere.

Both writers run inside the caller's transaction, so an import that fails leaves nothing.
"""

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

import orjson
from django.db import connection

from conversations.importers.records import ParsedConversation
from conversations.models import Conversation, KBReference, Message

CONVERSATION_COLUMNS = (
    "id, project_id, external_id, content_hash, source_format, source_name, source_line, "
    "occurred_at, author_id, import_job_id, metadata, created_at"
)
MESSAGE_COLUMNS = (
    "id, conversation_id, position, candidate, role, content, name, model, external_id, "
    "source_rank, metadata"
)
KB_COLUMNS = "message_id, position, article_id, title, url, version, snippet"


def _json(value: dict) -> str:
    if not value:
        return "{}"
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson cannot encode (e.g. integer keys) the standard library can
        return json.dumps(value, ensure_ascii=False)


class BaseWriter(ABC):
    background = False  # may write() run in a helper thread?

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

    @abstractmethod
    def write(self, rows: Sequence[tuple[ParsedConversation, str, str]]) -> None:
        """Insert these (conversation, external id, content hash) rows."""


class CopyWriter(BaseWriter):
    """COPY ... FROM STDIN into the three tables, with ids drawn from their sequences.

    It writes through the psycopg connection under Django's (the same transaction), so it may
    run in a helper thread while the importer parses the next batch; psycopg serialises use
    of the connection, and the importer waits for a write before its next query.
    """

    background = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        connection.ensure_connection()
        self.raw = connection.connection
        self.sequences: dict[str, str] = {}

    def _ids(self, cursor, table: str, n: int) -> list[int]:
        sequence = self.sequences.get(table)
        if sequence is None:  # looked up once: per row it costs more than the row itself
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = self.sequences[table] = cursor.fetchone()[0]
        cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, n])
        return [r[0] for r in cursor.fetchall()]

    def write(self, rows: Sequence[tuple[ParsedConversation, str, str]]) -> None:
        if not rows:
            return
        n_messages = sum(len(conv.messages) for conv, _, _ in rows)
        with self.raw.cursor() as cursor:
            conv_ids = self._ids(cursor, Conversation._meta.db_table, len(rows))
            msg_ids = self._ids(cursor, Message._meta.db_table, n_messages)
            with cursor.copy(
                f"COPY {Conversation._meta.db_table} ({CONVERSATION_COLUMNS}) FROM STDIN"
            ) as copy:
                for (conv, external_id, digest), conv_id in zip(rows, conv_ids, strict=True):
                    copy.write_row(
                        (
                            conv_id,
                            self.project_id,
                            external_id,
                            digest,
                            self.source_format,
                            self.source_name,
                            conv.line or None,
                            conv.occurred_at,
                            self.author_id,
                            self.import_job_id,
                            _json(conv.metadata),
                            self.now,
                        )
                    )
            kb_rows = []
            with cursor.copy(
                f"COPY {Message._meta.db_table} ({MESSAGE_COLUMNS}) FROM STDIN"
            ) as copy:
                ids = iter(msg_ids)
                for (conv, _, _), conv_id in zip(rows, conv_ids, strict=True):
                    for m in conv.messages:
                        msg_id = next(ids)
                        copy.write_row(
                            (
                                msg_id,
                                conv_id,
                                m.position,
                                m.candidate,
                                m.role,
                                m.content,
                                m.name,
                                m.model,
                                m.external_id,
                                m.source_rank,
                                _json(m.metadata),
                            )
                        )
                        for pos, ref in enumerate(m.kb_references):
                            kb_rows.append(
                                (
                                    msg_id,
                                    pos,
                                    ref.article_id,
                                    ref.title,
                                    ref.url,
                                    ref.version,
                                    ref.snippet,
                                )
                            )
            if kb_rows:
                with cursor.copy(
                    f"COPY {KBReference._meta.db_table} ({KB_COLUMNS}) FROM STDIN"
                ) as copy:
                    for row in kb_rows:
                        copy.write_row(row)


class OrmWriter(BaseWriter):
    """bulk_create, for databases without COPY (the embedded SQLite default)."""

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
