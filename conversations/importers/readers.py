"""Stream records out of a file, one at a time, so memory stays flat as the file grows.

Gzip is recognised by its magic bytes, whatever the file is called. Each record carries its
line (JSONL) or row (CSV) number so that every error can name it.
"""

import csv
import gzip
import io
import json
from collections.abc import Iterator
from typing import BinaryIO

import orjson

from conversations.importers.records import RecordError, SourceRecord

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
    def __init__(self, line: int, field: str, message: str, raw: bytes = b"", label: str = "line"):
        super().__init__(field, message)
        self.line = line
        self.raw = raw
        self.label = label


def _utf8(raw: bytes, line: int, label: str = "line") -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordReadError(
            line,
            "",
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8",
            raw,
            label,
        ) from None


def iter_json_lines(
    stream: BinaryIO, *, max_bytes: int
) -> Iterator[SourceRecord | RecordReadError]:
    """Yield one record per non-blank line, or a RecordReadError for a bad line (and go on)."""
    line_no = 0
    while True:
        raw = stream.readline(max_bytes + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while True:  # skip the rest of the over-long line without holding it
                rest = stream.readline(1 << 20)
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
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            value = orjson.loads(stripped)  # fast path; errors are re-diagnosed below
        except orjson.JSONDecodeError:
            pass
        else:
            yield SourceRecord(line=line_no, value=value, raw=stripped)
            continue
        try:
            text = _utf8(stripped, line_no)
            value = json.loads(text)
        except RecordReadError as exc:
            yield exc
            continue
        except json.JSONDecodeError as exc:
            yield RecordReadError(
                line_no, "", f"malformed JSON: {exc.msg} at column {exc.colno}", stripped
            )
            continue
        yield SourceRecord(line=line_no, value=value, raw=stripped)


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

    def lines() -> Iterator[str]:
        nonlocal physical
        for raw in stream:
            physical += 1
            if len(raw) > max_bytes:
                bad_lines[physical] = f"line is longer than the {max_bytes:,}-byte limit"
                yield "\n"
                continue
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad_lines[physical] = (
                    f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
                )
                yield raw.decode("utf-8", "replace")

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration:
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
        return SourceRecord(line=rows[0][0], value=list(rows), label="row")

    while True:
        start_physical = physical + 1
        try:
            row = next(reader)
        except StopIteration:
            break
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
