"""Transcript import: stream a file, validate every record, write all or nothing.

Guarantees of ``transcript_import``:
- one database transaction: by default a file with any invalid record imports nothing and
  ``ImportFailed`` is raised with every error (file, line or row, field, what was expected);
  with ``skip_invalid`` the valid records are imported and the bad ones written to ``rejects``;
- idempotent: a conversation whose external id (or content hash, where the source has no id)
  is already in the project is counted as a duplicate and skipped; the same id with different
  content is a conflict, reported as an error and never overwritten;
- streaming: records are read, validated and written in batches, so memory stays flat.
"""

import itertools
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from conversations.importers.formats import PARSERS, detect_json_format
from conversations.importers.readers import (
    RecordReadError,
    iter_csv_conversations,
    iter_json_lines,
    open_stream,
)
from conversations.importers.records import ParsedConversation, RecordError, SourceRecord
from conversations.importers.writers import writer_class
from conversations.models import Conversation, Project, SourceFormat


@dataclass(frozen=True)
class ImportIssue:
    source: str
    line: int
    label: str  # "line" or "row"
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}, {self.label} {self.line}" if self.line else self.source
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            self.label: self.line,
            "field": self.field,
            "message": self.message,
            "text": str(self),
        }


@dataclass
class ImportSummary:
    source: str
    format: str = ""
    records_read: int = 0
    conversations_read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    conflicts: int = 0
    error_count: int = 0
    errors: list[ImportIssue] = field(default_factory=list)
    bytes_read: int = 0

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "format": self.format,
            "records_read": self.records_read,
            "conversations_read": self.conversations_read,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "conflicts": self.conflicts,
            "error_count": self.error_count,
            "errors": [e.as_dict() for e in self.errors],
        }


class ImportFailed(Exception):
    """The file had invalid records and nothing was imported."""

    def __init__(self, summary: ImportSummary):
        shown = "\n".join(f"  {e}" for e in summary.errors[:20])
        more = summary.error_count - min(20, len(summary.errors))
        super().__init__(
            f"{summary.source}: nothing imported, {summary.error_count} invalid record(s):\n{shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
        self.summary = summary


ProgressCallback = Callable[[ImportSummary], None]


class _Importer:
    def __init__(
        self,
        *,
        project: Project,
        source_name: str,
        fmt: str,
        skip_invalid: bool,
        rejects: BinaryIO | None,
        import_job_id: int | None,
        author_id: int | None,
        batch_size: int,
        summary: ImportSummary,
    ):
        self.project = project
        self.source_name = source_name
        self.skip_invalid = skip_invalid
        self.rejects = rejects
        self.batch_size = batch_size
        self.summary = summary
        self.parser = PARSERS[fmt]
        self.writer = writer_class()(
            project_id=project.pk,
            source_format=fmt,
            source_name=source_name,
            import_job_id=import_job_id,
            author_id=author_id,
            now=timezone.now(),
        )
        self.batch: list[tuple[SourceRecord, ParsedConversation]] = []
        # COPY of one batch overlaps with parsing the next (PostgreSQL only)
        self.pool = ThreadPoolExecutor(max_workers=1) if self.writer.background else None
        self.pending: Future | None = None

    def wait(self) -> None:
        """Let the previous batch's COPY finish (and raise its error, if any)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)

    @property
    def writing(self) -> bool:
        return self.skip_invalid or self.summary.error_count == 0

    def reject(self, line: int, label: str, fld: str, message: str, raw: bytes | str) -> None:
        s = self.summary
        s.error_count += 1
        s.rejected += 1
        issue = ImportIssue(self.source_name, line, label, fld, message)
        if len(s.errors) < settings.IMPORT_MAX_REPORTED_ERRORS:
            s.errors.append(issue)
        if self.rejects is not None and self.skip_invalid:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            entry = {label: line, "field": fld, "error": message, "record": text}
            self.rejects.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")

    def feed(self, item: SourceRecord | RecordReadError) -> None:
        self.summary.records_read += 1
        if isinstance(item, RecordReadError):
            self.reject(item.line, item.label, item.field, item.message, item.raw)
            return
        try:
            conversations = self.parser(item)
        except RecordError as exc:
            self.reject(exc.line or item.line, item.label, exc.field, exc.message, _raw_text(item))
            return
        for conv in conversations:
            self.batch.append((item, conv))
        if len(self.batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        s = self.summary
        s.conversations_read += len(batch)
        keyed: dict[str, tuple[SourceRecord, ParsedConversation, str]] = {}
        for record, conv in batch:
            digest = conv.content_hash()
            external_id = conv.external_id or f"sha256:{digest}"
            seen = keyed.get(external_id)
            if seen is None:
                keyed[external_id] = (record, conv, digest)
            elif seen[2] == digest:
                s.duplicates += 1
            else:
                self.conflict(record, external_id)
        self.wait()
        existing = self.existing_hashes(list(keyed))
        new_rows = []
        for external_id, (record, conv, digest) in keyed.items():
            if external_id not in existing:
                new_rows.append((conv, external_id, digest))
            elif existing[external_id] == digest:
                s.duplicates += 1
            else:
                self.conflict(record, external_id)
        if self.writing and new_rows:
            if self.pool is not None:
                self.pending = self.pool.submit(self.writer.write, new_rows)
            else:
                self.writer.write(new_rows)
            s.imported += len(new_rows)

    def existing_hashes(self, external_ids: list[str]) -> dict[str, str]:
        """Content hashes of the conversations already stored under these ids."""
        if connection.vendor == "postgresql":
            # one array parameter instead of thousands of placeholders
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT external_id, content_hash FROM {Conversation._meta.db_table} "
                    "WHERE project_id = %s AND external_id = ANY(%s)",
                    [self.project.pk, external_ids],
                )
                return dict(cursor.fetchall())
        return dict(
            Conversation.objects.filter(
                project=self.project, external_id__in=external_ids
            ).values_list("external_id", "content_hash")
        )

    def conflict(self, record: SourceRecord, external_id: str) -> None:
        self.summary.conflicts += 1
        self.reject(
            record.line,
            record.label,
            "id",
            f"conversation {external_id!r} already exists with different content; "
            "it is not overwritten (give the new version its own id)",
            _raw_text(record),
        )


def _raw_text(record: SourceRecord) -> bytes | str:
    if record.raw:
        return record.raw
    return json.dumps(record.value, ensure_ascii=False, default=str)


def looks_like_csv(stream: BinaryIO, source_name: str) -> bool:
    """CSV is named by the file's extension or recognised by its header."""
    if source_name.lower().removesuffix(".gz").endswith(".csv"):
        return True
    head = stream.peek(64).lstrip().removeprefix(b"\xef\xbb\xbf")
    return head.startswith(b"conversation_id")


def _detect_json(records: Iterator[SourceRecord | RecordReadError]) -> tuple[str, Iterator]:
    """Detect the format from the first record; return it and the records, first included."""
    first = next(records, None)
    if first is None:
        raise RecordError("", "the file holds no record")
    if isinstance(first, RecordReadError):
        raise RecordError(first.field, f"{first.message} (cannot detect the format; pass --format)")
    fmt = detect_json_format(first.value)
    if fmt is None:
        raise RecordError(
            "",
            "cannot detect the format from the first record; pass --format "
            f"({', '.join(SourceFormat.values)})",
        )
    return fmt, itertools.chain([first], records)


def transcript_import(
    *,
    project: Project,
    stream: BinaryIO,
    source_name: str,
    fmt: str | None = None,
    skip_invalid: bool = False,
    rejects: BinaryIO | None = None,
    import_job_id: int | None = None,
    author_id: int | None = None,
    progress: ProgressCallback | None = None,
    batch_size: int | None = None,
) -> ImportSummary:
    """Import one transcript file (plain or gzip) into ``project``. See the module docstring.

    Raises ``ImportFailed`` (nothing written) when a record is invalid and ``skip_invalid``
    is off, or when the file holds no record at all.
    """
    summary = ImportSummary(source=source_name)
    data, counter, _ = open_stream(stream)
    max_bytes = settings.IMPORT_MAX_RECORD_BYTES
    if fmt is None and looks_like_csv(data, source_name):
        fmt = SourceFormat.CSV
    if fmt is not None and fmt not in PARSERS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(PARSERS)}")
    if fmt == SourceFormat.CSV:
        records: Iterator = iter_csv_conversations(data, max_bytes=max_bytes)
    else:
        records = iter_json_lines(data, max_bytes=max_bytes)
        if fmt is None:
            try:
                fmt, records = _detect_json(records)
            except RecordError as exc:
                summary.error_count = 1
                summary.errors.append(ImportIssue(source_name, 1, "line", exc.field, exc.message))
                raise ImportFailed(summary) from None
    summary.format = fmt
    with transaction.atomic():
        importer = _Importer(
            project=project,
            source_name=source_name,
            fmt=fmt,
            skip_invalid=skip_invalid,
            rejects=rejects,
            import_job_id=import_job_id,
            author_id=author_id,
            batch_size=batch_size or settings.IMPORT_BATCH_SIZE,
            summary=summary,
        )
        try:
            for n, item in enumerate(records, 1):
                importer.feed(item)
                if progress is not None and n % 1000 == 0:
                    summary.bytes_read = counter.count
                    progress(summary)
            importer.flush()
        finally:
            importer.close()
        summary.bytes_read = counter.count
        if summary.records_read == 0:
            summary.error_count = 1
            summary.errors.append(
                ImportIssue(source_name, 0, "line", "", "the file holds no record")
            )
        if summary.error_count and not skip_invalid or summary.records_read == 0:
            transaction.set_rollback(True)
            raise ImportFailed(summary)
    if progress is not None:
        progress(summary)
    return summary
