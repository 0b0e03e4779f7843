"""bulk_create, for databases without COPY (the embedded SQLite default)."""

from collections.abc import Sequence
from dataclasses import asdict

from conversations.importers.records import ParsedConversation
from conversations.importers.writers.base import BaseWriter
from conversations.models import Conversation, KBReference, Message


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
