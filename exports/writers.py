"""Write rows to JSONL, Parquet or CSV (optionally gzip), streaming, and describe the file.

Memory stays flat: JSONL and CSV write row by row, Parquet in row groups of ``batch_rows``.
Parquet is snappy-compressed (pyarrow's and Spark's default), with dictionary encoding for
every column except free text (``TEXT_COLUMNS``), where it never pays: docs/exports.md.
JSON lines are compact (orjson: UTF-8, no spaces after separators, several times faster than
the standard library), except for formats that must match a published file's bytes
(``python_json``: ``json.dumps(row, ensure_ascii=False)``, as the HH-RLHF files are written).
CSV cells that a spreadsheet would run as a formula get a leading ``'``
(``config/spreadsheet.py``); JSONL and Parquet keep every text exactly.
"""

import csv
import gzip
import hashlib
import io
import json
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from config.spreadsheet import safe_cell


@dataclass(frozen=True)
class FileInfo:
    name: str
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# json.dumps(row, ensure_ascii=False), without building an encoder for every row
_dumps = json.JSONEncoder(ensure_ascii=False).encode
_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def _compact_line(row: dict) -> bytes:
    return orjson.dumps(row, option=_ORJSON_OPTIONS)


def _python_line(row: dict) -> bytes:
    return (_dumps(row) + "\n").encode("utf-8")


# top-level string columns of free text: almost every value differs, so a dictionary page
# fills, is thrown away and costs time (8% of a trl export's encoding) for no smaller file
TEXT_COLUMNS = frozenset({"prompt", "chosen", "rejected", "response"})


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """The Parquet column paths (leaves) that get a dictionary: all but ``TEXT_COLUMNS``."""

    def leaves(path: str, kind: pa.DataType) -> list[str]:
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return leaves(f"{path}.list.element", kind.value_type)
        if pa.types.is_struct(kind):
            return [leaf for f in kind for leaf in leaves(f"{path}.{f.name}", f.type)]
        return [] if path in TEXT_COLUMNS and pa.types.is_string(kind) else [path]

    return [leaf for f in schema for leaf in leaves(f.name, f.type)]


class _HashingFile:
    """A binary file that also computes the sha256 of what is written to it."""

    def __init__(self, path: Path):
        self.file = path.open("wb", buffering=1 << 20)
        self.sha256 = hashlib.sha256()
        self.closed = False

    def write(self, data) -> int:
        self.sha256.update(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.closed = True
        self.file.close()


class RowWriter:
    def __init__(
        self,
        path: Path,
        file_type: str,
        compress: bool,
        schema: pa.Schema,
        batch_rows: int = 2000,
        *,
        python_json: bool = False,
    ):
        self.path, self.file_type, self.compress, self.schema = path, file_type, compress, schema
        self.line = _python_line if python_json else _compact_line
        self.rows = 0
        self.batch: list[dict] = []
        # sha256 of what write_bytes wrote, when nothing else wrote (uncompressed JSONL only)
        self.running: hashlib._Hash | None = hashlib.sha256() if not compress else None
        self.batch_rows = batch_rows
        if file_type == "parquet":
            self.parquet_path = path.with_name(path.name + ".tmp") if compress else path
            # hashed as it is written (by the fast export's writer thread), unless gzipped
            self.sink = _HashingFile(self.parquet_path)
            self.pq = pq.ParquetWriter(
                self.sink,
                schema,
                compression="snappy",
                use_dictionary=_dictionary_columns(schema),
            )
            return
        # the writer owns the file until close() or abort(): an ExitStack holds it open
        self.files = ExitStack()
        raw = self.files.enter_context(path.open("wb", buffering=1 << 20))
        if compress:
            raw = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=5)
        self.raw = raw
        self.text = io.TextIOWrapper(
            raw, encoding="utf-8", newline="" if file_type == "csv" else "\n"
        )
        if file_type == "csv":
            self.csv = csv.DictWriter(self.text, fieldnames=schema.names, extrasaction="ignore")
            self.csv.writeheader()

    def write(self, row: dict) -> None:
        self.rows += 1
        self.running = None
        if self.file_type == "jsonl":
            self.raw.write(self.line(row))  # bytes: the text layer is only used by CSV
        elif self.file_type == "csv":
            # nested values as JSON text; every text cell safe to open in a spreadsheet
            self.csv.writerow(
                {
                    k: safe_cell(_dumps(v) if isinstance(v, list | dict) else v)
                    for k, v in row.items()
                }
            )
        else:
            self.batch.append(row)
            if len(self.batch) >= self.batch_rows:
                self._flush()

    def write_bytes(self, data, rows: int) -> None:
        """Write ``rows`` finished JSON lines at once (the fast export's path)."""
        self.rows += rows
        self.raw.write(data)
        if self.running is not None:
            self.running.update(data)

    def write_table(self, table: pa.Table) -> None:
        """Write one row group (Parquet), as ``write`` does for every ``batch_rows`` rows."""
        if self.batch:
            raise ValueError("write_table after write: the row groups would differ")
        self.rows += table.num_rows
        self.pq.write_table(table)

    def _flush(self) -> None:
        if self.batch:
            self.pq.write_table(pa.Table.from_pylist(self.batch, schema=self.schema))
            self.batch = []

    def close(self) -> FileInfo:
        if self.file_type == "parquet":
            self._flush()
            self.pq.close()
            self.sink.close()
            if self.compress:
                with (
                    self.parquet_path.open("rb") as src,
                    gzip.open(self.path, "wb", compresslevel=5) as dst,
                ):
                    shutil.copyfileobj(src, dst, 1 << 20)
                self.parquet_path.unlink()
        else:
            self.text.close()
            self.files.close()
        if self.file_type == "jsonl" and self.running is not None:
            digest = self.running.hexdigest()  # every byte went through write_bytes
        elif self.file_type == "parquet" and not self.compress:
            digest = self.sink.sha256.hexdigest()
        else:
            digest = file_sha256(self.path)
        return FileInfo(self.path.name, self.rows, self.path.stat().st_size, digest)

    def abort(self) -> None:
        try:
            if self.file_type == "parquet":
                try:
                    self.pq.close()
                finally:
                    self.sink.close()
            else:
                self.text.close()
                self.files.close()
        finally:
            for p in (self.path, getattr(self, "parquet_path", None)):
                if p is not None and p.exists():
                    p.unlink()


def file_type_of(path: Path) -> tuple[str, bool]:
    """('jsonl' | 'parquet' | 'csv', gzip?) from a file name; ValueError otherwise."""
    name = path.name.lower()
    compress = name.endswith(".gz")
    stem = name.removesuffix(".gz")
    for ext in ("jsonl", "parquet", "csv"):
        if stem.endswith("." + ext):
            return ext, compress
    raise ValueError(
        f"{path.name}: the file type follows the extension: .jsonl, .parquet or .csv (each optionally .gz)"
    )
