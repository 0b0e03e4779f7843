"""The parsing half of an import: records in; batches of validated, hashed and encoded
conversations (or rejected records) out.

``prepare_batches`` touches no database, so it may run in this process (the plain path) or,
where the COPY writer runs, in a forked child process (``conversations.accel.fork``) that
parses batch n+1 while the importer stores batch n.
"""

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from conversations.importers.readers import CountingReader, RecordReadError
from conversations.importers.records import ParsedConversation, RecordError, SourceRecord
from conversations.importers.safe_json import check
from conversations.importers.writers import BaseWriter

FIRST_BATCH = 200
# a record's value and line to (external id, content hash, the writer's payload), or None
# for the general path; an acceleration may offer one (``conversations.accel.fastpath``)
FastPath = Callable[[object, int], tuple[str, str, object] | None]


class Prepared(NamedTuple):
    """A valid conversation, ready for the duplicate check and the writer."""

    line: int
    label: str
    raw: bytes | str  # the record's text, kept only when rejects are written
    external_id: str
    digest: str
    index: int  # of what the writer's ``encode`` made of it, in the batch's ``packed``


class Rejected(NamedTuple):
    line: int
    label: str
    field: str
    message: str
    raw: bytes | str
    fatal: bool = False  # the file as a whole is refused (readers.FileRefused)


@dataclass(slots=True)
class Batch:
    items: list[Prepared | Rejected]  # in the order of the file
    records: int  # records read for this batch
    bytes_read: int  # (compressed) bytes of the file consumed so far
    packed: object  # the valid conversations, as the writer's ``pack`` made them


def raw_text(record: SourceRecord) -> bytes | str:
    if record.raw:
        return record.raw
    return json.dumps(record.value, ensure_ascii=False, default=str)


def prepare_batches(
    records: Iterable[SourceRecord | RecordReadError],
    *,
    parser: Callable[[SourceRecord], list[ParsedConversation]],
    writer: BaseWriter,
    fast: FastPath | None,
    keep_raw: bool,
    batch_size: int,
    counter: CountingReader,
) -> Iterator[Batch]:
    """Parse, validate, hash and encode the records; yield a batch every ``batch_size``
    conversations or records, whichever comes first, and one at the end. The first batch is
    smaller, so that the database has work after milliseconds, not after a whole batch's
    parsing. Touches no database."""
    items: list[Prepared | Rejected] = []
    payloads: list[object] = []
    n_records = n_conversations = 0
    limit = min(batch_size, FIRST_BATCH)
    for record in records:
        n_records += 1
        if isinstance(record, RecordReadError):
            raw = record.raw if keep_raw else b""
            items.append(
                Rejected(record.line, record.label, record.field, record.message, raw, record.fatal)
            )
        elif fast is not None and (done := fast(record.value, record.line)) is not None:
            external_id, digest, payload = done
            raw = raw_text(record) if keep_raw else b""
            items.append(
                Prepared(record.line, record.label, raw, external_id, digest, len(payloads))
            )
            payloads.append(payload)
            n_conversations += 1
        else:
            try:
                if not record.checked:
                    check(record.value)
                conversations = parser(record)
            except RecordError as exc:
                raw = raw_text(record) if keep_raw else b""
                line = exc.line or record.line
                items.append(Rejected(line, record.label, exc.field, exc.message, raw))
            else:
                raw = raw_text(record) if keep_raw else b""
                for conv in conversations:
                    digest = conv.content_hash()
                    external_id = conv.external_id or f"sha256:{digest}"
                    items.append(
                        Prepared(record.line, record.label, raw, external_id, digest, len(payloads))
                    )
                    payloads.append(writer.encode(conv, external_id, digest))
                n_conversations += len(conversations)
        if n_conversations >= limit or n_records >= limit:
            yield Batch(items, n_records, counter.count, writer.pack(payloads))
            items, payloads, n_records, n_conversations, limit = [], [], 0, 0, batch_size
    # even if empty: the final byte count
    yield Batch(items, n_records, counter.count, writer.pack(payloads))
