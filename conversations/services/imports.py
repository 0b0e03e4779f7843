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
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config import accel
from config.accel.malloc import fix_malloc_mmap_threshold
from conversations.accel.copy_writer import CopyWriter, stored_hashes
from conversations.accel.fastpath import fast_path
from conversations.accel.fork import can_fork, worker_batches
from conversations.importers.formats import PARSERS, detect_json_format
from conversations.importers.pipeline import Batch, Prepared, Rejected, prepare_batches
from conversations.importers.readers import (
    COMPRESSION_ERRORS,
    RecordReadError,
    _damaged,
    iter_csv_conversations,
    iter_json_lines,
    open_stream,
)
from conversations.importers.records import RecordError, SourceRecord
from conversations.importers.writers import BaseWriter, OrmWriter
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
    file_refused: bool = False  # damaged, or over a size limit: nothing is imported
    format_undetected: bool = False  # the first record did not tell the format

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


def writer_class() -> type[BaseWriter]:
    """The binary COPY writer where ``import_copy`` is on (conversations/accel/), else the
    ORM writer. The COPY writer also brings the fast path and the forked parser."""
    return CopyWriter if accel.enabled("import_copy") else OrmWriter


class _Importer:
    """Takes the batches of ``prepare_batches``: reports the rejected records, checks the
    conversations against each other and the database, and hands the new ones to the writer
    (in a helper thread where the writer allows, so that storing a batch overlaps with
    receiving the next)."""

    def __init__(
        self,
        *,
        project: Project,
        source_name: str,
        skip_invalid: bool,
        rejects: BinaryIO | None,
        writer: BaseWriter,
        summary: ImportSummary,
    ):
        self.project = project
        self.source_name = source_name
        self.skip_invalid = skip_invalid
        self.rejects = rejects
        self.summary = summary
        self.writer = writer
        self.pool = ThreadPoolExecutor(max_workers=1) if writer.background else None
        self.pending: Future | None = None

    def wait(self) -> None:
        """Let the previous batch's write finish (and raise its error, if any)."""
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

    def take(self, batch: Batch) -> None:
        s = self.summary
        s.records_read += batch.records
        s.bytes_read = batch.bytes_read
        keyed: dict[str, Prepared] = {}
        for item in batch.items:
            if type(item) is Rejected:
                self.reject(item.line, item.label, item.field, item.message, item.raw)
                s.file_refused = s.file_refused or item.fatal
                continue
            s.conversations_read += 1
            seen = keyed.get(item.external_id)
            if seen is None:
                keyed[item.external_id] = item
            elif seen.digest == item.digest:
                s.duplicates += 1
            else:
                self.conflict(item)
        if not keyed:
            return
        self.wait()
        existing = self.existing_hashes(list(keyed))
        new_rows = []
        for external_id, item in keyed.items():
            if external_id not in existing:
                new_rows.append(item.index)
            elif existing[external_id] == item.digest:
                s.duplicates += 1
            else:
                self.conflict(item)
        if self.writing and new_rows:
            if self.pool is not None:
                self.pending = self.pool.submit(self.writer.write, batch.packed, new_rows)
            else:
                self.writer.write(batch.packed, new_rows)
            s.imported += len(new_rows)

    def existing_hashes(self, external_ids: list[str]) -> dict[str, str]:
        """Content hashes of the conversations already stored under these ids."""
        if accel.enabled("import_copy"):
            return stored_hashes(self.project.pk, external_ids)
        return dict(
            Conversation.objects.filter(
                project=self.project, external_id__in=external_ids
            ).values_list("external_id", "content_hash")
        )

    def conflict(self, item: Prepared) -> None:
        self.summary.conflicts += 1
        self.reject(
            item.line,
            item.label,
            "id",
            f"conversation {item.external_id!r} already exists with different content; "
            "it is not overwritten (give the new version its own id)",
            item.raw,
        )


def looks_like_csv(stream: BinaryIO, source_name: str) -> bool:
    """CSV is named by the file's extension or recognised by its header."""
    if source_name.lower().removesuffix(".gz").endswith(".csv"):
        return True
    head = stream.peek(64).lstrip().removeprefix(b"\xef\xbb\xbf")
    return head.startswith(b"conversation_id")


def _detect_json(records: Iterator[SourceRecord | RecordReadError]) -> tuple[str, Iterator]:
    """Detect the format from the first record; return it and the records, first included.

    The messages say what to do in words that fit the command line, the API and the upload
    page alike ("name its format"); the command adds its option."""
    first = next(records, None)
    if first is None:
        raise RecordError("", "the file holds no record")
    if isinstance(first, RecordReadError):
        if first.fatal:
            raise first
        raise RecordError(
            first.field,
            f"{first.message} (so the format cannot be detected from it; name the format, "
            "or fix this record)",
            line=first.line,
        )
    fmt = detect_json_format(first.value)
    if fmt is None:
        raise RecordError(
            "",
            "cannot detect the format from the first record; name its format (one of "
            f"{', '.join(SourceFormat.values)}; docs/formats.md describes each)",
            line=first.line,
        )
    return fmt, itertools.chain([first], records)


def _refuse_first(summary: ImportSummary, exc: RecordError) -> None:
    """Refuse the file on its first record (or its first bytes): nothing imported."""
    line = exc.line or 1
    label = getattr(exc, "label", "line")
    summary.error_count = 1
    summary.errors.append(ImportIssue(summary.source, line, label, exc.field, exc.message))
    raise ImportFailed(summary) from None


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
    parse_in_worker: bool | None = None,
) -> ImportSummary:
    """Import one transcript file (plain or gzip) into ``project``. See the module docstring.

    Records are parsed in a forked child process where the writer can overlap with it
    (PostgreSQL; ``parse_in_worker`` None) and this process may fork (not in a child of
    Celery's prefork pool, which is daemonic), or in this one (SQLite, a prefork child, or
    ``parse_in_worker`` False). Raises ``ImportFailed`` (nothing written) when a record is invalid and
    ``skip_invalid`` is off, or when the file holds no record at all.
    """
    summary = ImportSummary(source=source_name)
    data, counter, _ = open_stream(stream)
    max_bytes = settings.IMPORT_MAX_RECORD_BYTES
    if fmt is not None and fmt not in PARSERS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(PARSERS)}")
    try:
        if fmt is None and looks_like_csv(data, source_name):
            fmt = SourceFormat.CSV
        if fmt == SourceFormat.CSV:
            records: Iterator = iter_csv_conversations(data, max_bytes=max_bytes)
        else:
            records = iter_json_lines(data, max_bytes=max_bytes)
            if fmt is None:
                fmt, records = _detect_json(records)
    except COMPRESSION_ERRORS as exc:  # (looks_like_csv reads the start of the file)
        summary.file_refused = True
        _refuse_first(summary, _damaged(1, exc))
    except RecordError as exc:
        summary.file_refused = True
        summary.format_undetected = not getattr(exc, "fatal", False)
        _refuse_first(summary, exc)
    summary.format = fmt
    with transaction.atomic():
        writer = writer_class()(
            project_id=project.pk,
            source_format=fmt,
            source_name=source_name,
            import_job_id=import_job_id,
            author_id=author_id,
            now=timezone.now(),
        )
        keep_raw = skip_invalid and rejects is not None

        def make_batches() -> Iterator[Batch]:
            return prepare_batches(
                records,
                parser=PARSERS[fmt],
                writer=writer,
                fast=fast_path(fmt, writer),
                keep_raw=keep_raw,
                batch_size=batch_size or settings.IMPORT_BATCH_SIZE,
                counter=counter,
            )

        if parse_in_worker is None:
            parse_in_worker = writer.background and can_fork()
        if parse_in_worker:
            fix_malloc_mmap_threshold()  # memory flat as the file grows, in both processes
        # forked before the writer starts its thread
        batches = worker_batches(make_batches) if parse_in_worker else nullcontext(make_batches())
        with batches as stream_of_batches:
            writer.begin()
            importer = _Importer(
                project=project,
                source_name=source_name,
                skip_invalid=skip_invalid,
                rejects=rejects,
                writer=writer,
                summary=summary,
            )
            try:
                for batch in stream_of_batches:
                    importer.take(batch)
                    if progress is not None:
                        progress(summary)
            finally:
                importer.close()
        if summary.records_read == 0:
            summary.error_count = 1
            summary.errors.append(
                ImportIssue(source_name, 0, "line", "", "the file holds no record")
            )
        if (
            summary.error_count
            and (not skip_invalid or summary.file_refused)
            or summary.records_read == 0
        ):
            transaction.set_rollback(True)
            raise ImportFailed(summary)
        writer.finish()
    if progress is not None:
        progress(summary)
    return summary
