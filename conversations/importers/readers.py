"""Stream records out of a file, one at a time, so memory stays flat as the file grows.

Gzip is recognised by its magic bytes, whatever the file is called. Each record carries its
line (JSONL) or row (CSV) number so that every error can name it.
"""

import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from django.conf import settings

from conversations.importers.records import RecordError, SourceRecord
from conversations.importers.safe_json import parse_line

GZIP_MAGIC = b"\x1f\x8b"
CSV_REQUIRED = ("conversation_id", "turn_index", "role", "content")


class CountingReader(io.RawIOBase):
    """Wraps the raw file to report how many (compressed) bytes were consumed."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def open_stream(raw: BinaryIO) -> tuple[BinaryIO, CountingReader, bool]:
    """Return (decompressed buffered stream, byte counter on the raw file, is_gzip)."""
    counter = CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    is_gzip = buffered.peek(2)[:2] == GZIP_MAGIC
    if is_gzip:
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered), 1 << 20), counter, True
    return buffered, counter, False


class RecordReadError(RecordError):
    fatal = False  # True: the file as a whole is refused (see FileRefused)

    def __init__(self, line: int, field: str, message: str, raw: bytes = b"", label: str = "line"):
        super().__init__(field, message)
        self.line = line
        self.raw = raw
        self.label = label


class FileRefused(RecordReadError):
    """The file as a whole is refused where reading stopped: a truncated or corrupt compressed
    file, more decompressed bytes or more blank lines in a row than the limits allow. The
    import writes nothing, even when it skips invalid records."""

    fatal = True


# what reading a damaged gzip raises (a truncated one: EOFError)
COMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def _damaged(line: int, exc: BaseException, label: str = "line") -> FileRefused:
    return FileRefused(
        line,
        "",
        "the compressed (gzip) file is truncated or damaged here "
        f"({type(exc).__name__}: {exc}); upload the complete file",
        label=label,
    )


def _too_big(line: int, limit: int, label: str = "line") -> FileRefused:
    return FileRefused(
        line,
        "",
        f"the file decompresses to more than {limit:,} bytes "
        "(RATELOOP_IMPORT_MAX_DECOMPRESSED_BYTES); split it",
        label=label,
    )


def _too_blank(line: int, limit: int, label: str = "line") -> FileRefused:
    return FileRefused(
        line,
        "",
        f"more than {limit:,} blank lines in a row (RATELOOP_IMPORT_MAX_BLANK_LINES); "
        "this does not look like a file of records",
        label=label,
    )


def iter_json_lines(
    stream: BinaryIO, *, max_bytes: int
) -> Iterator[SourceRecord | RecordReadError]:
    """Yield one record per non-blank line, or a RecordReadError for a bad line (and go on).

    Each value is read by ``safe_json.parse_line`` (its ``checked`` says whether it still
    needs ``safe_json.check``: depth, NUL). A ``FileRefused`` ends the records: a damaged
    compressed file, or the decompressed size or the blank lines in a row over their limits.
    """
    max_total = settings.IMPORT_MAX_DECOMPRESSED_BYTES
    max_blank = settings.IMPORT_MAX_BLANK_LINES
    line_no = total = blank = 0
    try:
        while True:
            raw = stream.readline(max_bytes + 1)
            if not raw:
                return
            line_no += 1
            total += len(raw)
            if len(raw) > max_bytes and not raw.endswith(b"\n"):
                while True:  # skip the rest of the over-long line without holding it
                    rest = stream.readline(1 << 20)
                    total += len(rest)
                    if total > max_total:
                        yield _too_big(line_no, max_total)
                        return
                    if not rest or rest.endswith(b"\n"):
                        break
                yield RecordReadError(
                    line_no,
                    "",
                    f"line is longer than the {max_bytes:,}-byte limit "
                    "(RATELOOP_IMPORT_MAX_RECORD_BYTES)",
                    raw[:200],
                )
                continue
            if total > max_total:
                yield _too_big(line_no, max_total)
                return
            stripped = raw.strip()
            if not stripped:
                blank += 1
                if blank > max_blank:
                    yield _too_blank(line_no, max_blank)
                    return
                continue
            blank = 0
            try:
                value, checked = parse_line(stripped)
            except RecordError as exc:
                yield RecordReadError(line_no, exc.field, exc.message, stripped)
                continue
            yield SourceRecord(line=line_no, value=value, raw=stripped, checked=checked)
    except COMPRESSION_ERRORS as exc:
        yield _damaged(line_no + 1, exc)


def iter_csv_conversations(
    stream: BinaryIO, *, max_bytes: int
) -> Iterator[SourceRecord | RecordReadError]:
    """Group CSV rows by conversation_id into records.

    The rows of one conversation must be contiguous (as every exporter writes them); a
    conversation id that comes back after another one is an error, so that the reader never
    has to hold the whole file. The record's number is the row number of its first data row
    (the header is row 1); each row keeps its own row number for errors.
    """
    bad_lines: dict[int, str] = {}
    physical = 0
    max_total = settings.IMPORT_MAX_DECOMPRESSED_BYTES
    max_blank = settings.IMPORT_MAX_BLANK_LINES

    def lines() -> Iterator[str]:
        nonlocal physical
        total = blank = 0
        try:
            for raw in stream:
                physical += 1
                total += len(raw)
                if total > max_total:
                    raise _too_big(physical, max_total)
                if raw.isspace():
                    blank += 1
                    if blank > max_blank:
                        raise _too_blank(physical, max_blank)
                else:
                    blank = 0
                if len(raw) > max_bytes:
                    bad_lines[physical] = f"line is longer than the {max_bytes:,}-byte limit"
                    yield "\n"
                    continue
                if b"\x00" in raw:
                    bad_lines[physical] = (
                        "holds a NUL character (byte 0x00), which the database cannot store; "
                        "remove it"
                    )
                    raw = raw.replace(b"\x00", b"")
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad_lines[physical] = (
                        f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
                    )
                    yield raw.decode("utf-8", "replace")
        except COMPRESSION_ERRORS as exc:
            raise _damaged(physical + 1, exc) from None

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration:
        return
    except FileRefused as exc:
        yield exc
        return
    except csv.Error as exc:
        yield RecordReadError(1, "", f"unreadable CSV header: {exc}", label="row")
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        yield RecordReadError(
            1,
            "header",
            f"missing column(s) {', '.join(missing)}; expected at least {', '.join(CSV_REQUIRED)}",
            label="row",
        )
        return

    seen: set[str] = set()
    current_id: str | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    row_no = 1
    problem: RecordReadError | None = None

    def flush() -> SourceRecord | RecordReadError:
        if problem is not None:
            return problem
        # (NUL is refused line by line above; the metadata column is read by safe_json.loads)
        return SourceRecord(line=rows[0][0], value=list(rows), label="row", checked=True)

    while True:
        start_physical = physical + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except FileRefused as exc:
            yield exc
            return
        except csv.Error as exc:
            row_no += 1
            yield RecordReadError(row_no, "", f"malformed CSV: {exc}", label="row")
            return
        row_no += 1
        if not any(cell.strip() for cell in row):
            continue
        record = dict(zip(header, row, strict=False))
        if len(row) != len(header):
            err = RecordReadError(
                row_no, "", f"has {len(row)} fields, the header has {len(header)}", label="row"
            )
        else:
            err = None
        for ln in range(start_physical, physical + 1):
            if ln in bad_lines:
                err = RecordReadError(row_no, "", f"line {ln}: {bad_lines.pop(ln)}", label="row")
        conv_id = record.get("conversation_id", "").strip()
        if conv_id != current_id:
            if rows or problem:
                yield flush()
            if current_id is not None:
                seen.add(current_id)
            rows, problem, current_id = [], None, conv_id
            if conv_id in seen:
                problem = RecordReadError(
                    row_no,
                    "conversation_id",
                    f"conversation {conv_id!r} appears again after other conversations; "
                    "the rows of a conversation must be contiguous",
                    label="row",
                )
        if err is not None and problem is None:
            problem = err
        rows.append((row_no, record))
    if rows or problem:
        yield flush()
