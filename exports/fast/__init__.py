"""The fast export: the common preference export without building a record per pair.

It covers the format ``trl`` (prompt, chosen, rejected as strings) with majority
aggregation, no train/test split, the default, gold, external, flagged-rater and date
filters, any ``min_raters``, ``min_agreement`` and ``both_bad``, as JSONL (optionally gzip)
and Parquet, on PostgreSQL. ``run_export`` (exports/pipeline.py) takes it for exactly those
requests; everything else goes the general way. The files and the manifest are byte for
byte what the general path writes (the tests compare both on the same projects), except
the manifest's time and a gzip header's time.

How (bench/RESULTS.md has the measurements):
1. the pairs (id, creation time) in one query, then their votes a chunk of pairs a query,
   decided with array arithmetic (``decisions.py``), which also collects the manifest's
   raters and versions; outside an enclosing transaction a second connection reads the
   votes in the export's snapshot, a chunk ahead;
2. JSONL: every line is ``{"prompt":P,"chosen":C,"rejected":R}`` with P, C, R the JSON
   encodings of three strings that never change once a pair exists; they are kept encoded
   in a local cache (``cache.py``; the first export of a project encodes them, in
   PostgreSQL, on one connection per CPU), lines are joined from them a cache batch at a
   time by Arrow, with no Python object per line, and a second thread writes and hashes;
3. Parquet: each row group's text (``batch_rows`` pairs, the general path's groups) comes
   from one query as the column's texts joined, with their lengths, and becomes Arrow
   strings without a Python object per value; groups are read on one connection per CPU.
Memory stays flat: a cache batch or a row group at a time, and arrays of a number per pair.
"""

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection, transaction

from conversations.models import Project
from exports.canonical import ExportFilters, read_ahead, serial_reads
from exports.exporters import REGISTRY
from exports.fast import cache as text_cache
from exports.fast import decisions
from exports.fast.cache import CacheMiss
from exports.writers import RowWriter
from ratings.models import Item, TaskKind

# format -> how the three JSON strings become a line: (before P, before C, before R, end)
LINES = {
    "trl": (b'{"prompt":', b',"chosen":', b',"rejected":', b"}\n"),
}
# Arrow scalars, made when the module is imported: the first Arrow conversion in a process
# imports pandas (a third of a second), which belongs to start-up, not to every export
LINE_PARTS = tuple(pa.scalar(x, pa.binary()) for x in LINES["trl"])
NOTHING = pa.scalar(b"", pa.binary())
DEFAULT_FILTERS = ExportFilters()
SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


__all__ = ["CacheMiss", "refusal", "run_fast_export"]


def refusal(options) -> str | None:
    """Why the fast path does not cover these options, or None when it does."""
    if connection.vendor != "postgresql":
        return "PostgreSQL only"
    if options.format not in LINES:
        return f"format {options.format}"
    if options.file_type not in ("jsonl", "parquet"):
        return f"file type {options.file_type}"
    if options.aggregation != "majority":
        return f"aggregation {options.aggregation}"
    if options.test_fraction > 0:
        return "a train/test split"
    f = options.filters
    if f.source != DEFAULT_FILTERS.source or f.model != DEFAULT_FILTERS.model:
        return "source or model filter"
    return None


def run_fast_export(
    *,
    project: Project,
    options,
    out_dir: Path,
    base_name: str,
    created_by: str = "",
    progress: Callable[[int, int], None] | None = None,
):
    """``run_export`` for the requests ``refusal`` accepts; same guarantees and result."""
    from exports.pipeline import output_names, publish

    if refusal(options) is not None:
        raise ValueError(f"the fast export does not cover this request: {refusal(options)}")
    exporter = REGISTRY[options.format]
    splits, names, partial = output_names(options, out_dir, base_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = RowWriter(
        partial["all"],
        options.file_type,
        options.compress,
        exporter.schema,
        python_json=exporter.python_json,
    )
    totals = decisions.Totals()
    # a second connection cannot see what an enclosing transaction wrote
    ahead = not connection.in_atomic_block
    try:
        with serial_reads(snapshot=True):
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")  # compiling costs more than it saves here
            ids, stamps = decisions.pairs(project, options.filters)

            def decided():
                for chunk in _decided(project, options, ids, ahead=ahead):
                    totals.add(chunk)
                    if progress is not None:
                        progress(totals.records_read, len(ids))
                    yield chunk

            if options.file_type == "jsonl":
                store = text_cache.FragmentCache(project.pk)
                # encodes what is missing (a cold cache), in parallel where it can
                where = store.ensure(ids, stamps, snapshot=_snapshot() if ahead else None)
                _write_jsonl(store, ids, where, decided(), writer)
            else:
                _write_parquet(decided(), writer, _snapshot() if ahead else None)
        info = writer.close()
    except BaseException:
        writer.abort()
        raise
    if progress is not None:
        progress(totals.records_read, len(ids))
    counts = {
        "records_read": totals.records_read,
        "rows_written": {"all": info.rows},
        "dropped": dict(sorted((k, v) for k, v in totals.dropped.items() if v)),
        "raters": len(totals.raters),
    }
    return publish(
        project=project,
        options=options,
        kind=TaskKind.PAIRWISE,
        aggregation_info={},
        out_dir=out_dir,
        base_name=base_name,
        files=[(partial["all"], names["all"], info)],
        counts=counts,
        rubric_versions=totals.rubric_versions(),
        guideline_versions=totals.guideline_versions,
        created_by=created_by,
    )


def _decided(project, options, ids, *, ahead: bool):
    """The chunks' decisions; on PostgreSQL outside an enclosing transaction, read by a
    second thread on its own connection in this transaction's snapshot, a chunk ahead, so
    that the votes of the next chunk are read while this one is written."""
    if not ahead:
        yield from decisions.chunks(project, options, ids)
        return
    snapshot = _snapshot()

    def produce():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute("SET LOCAL jit = off")
            yield from decisions.chunks(project, options, ids)

    yield from read_ahead(produce, depth=2)


def _snapshot() -> str:
    """This transaction's snapshot, exported for other connections to read in."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
    if not SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    return snapshot


class _Background:
    """Writes (and hashes) finished bytes in a second thread, at most two pieces behind:
    both release the interpreter lock, so Arrow joins the next lines meanwhile."""

    def __init__(self, writer: RowWriter):
        self.writer = writer
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-writer")
        self.pending: list = []

    def write(self, data, rows: int) -> None:
        self.pending.append(self.pool.submit(self.writer.write_bytes, data, rows))
        if len(self.pending) > 2:
            self.pending.pop(0).result()

    def finish(self) -> None:
        try:
            for future in self.pending:
                future.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _write_jsonl(store, ids: np.ndarray, where: np.ndarray, chunks, writer: RowWriter) -> None:
    """Join each kept pair's line from its cached fragments, a cache batch at a time."""
    before_p, before_c, before_r, end = LINE_PARTS
    background = _Background(writer)
    reader = batch = None  # the file is opened at the first line: a project may have none
    loaded = -1
    try:
        for chunk in chunks:
            if not len(chunk.kept):
                continue
            pos = where[np.searchsorted(ids, chunk.kept)]
            batch_of, row_of = store.index[2][pos], store.index[3][pos]
            # kept pairs are in id order, and so are the cache's batches
            starts = np.flatnonzero(np.diff(batch_of, prepend=-1))
            for s, e in zip(starts, [*starts[1:], len(pos)], strict=True):
                if batch_of[s] != loaded:
                    batch, loaded = None, int(batch_of[s])
                    reader = reader or store.reader()
                    batch = reader.get_batch(loaded)
                rows = row_of[s:e]
                chosen = 2 * rows + chunk.b_won[s:e]  # see cache.SCHEMA
                lines = pc.binary_join_element_wise(
                    before_p,
                    batch.column(0).take(rows),
                    before_c,
                    batch.column(1).take(chosen),
                    before_r,
                    batch.column(1).take(4 * rows + 1 - chosen),
                    end,
                    NOTHING,
                )
                offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
                first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
                background.write(memoryview(lines.buffers()[2])[first:last], len(lines))
                del lines
    finally:
        background.finish()
        del reader, batch  # the file closes with its reader


def _write_parquet(chunks, writer: RowWriter, snapshot: str | None) -> None:
    """Read the kept pairs' text in id order, a row group (``batch_rows`` rows, as the
    general path writes them) a query, and write each group as it comes; outside an
    enclosing transaction the groups are read by one connection per CPU."""
    from conversations.models import Message

    inner = PARQUET_SQL.format(
        prompt=text_cache.prompt_sql(),
        items=Item._meta.db_table,
        messages=Message._meta.db_table,
    )
    # a row group comes as one row: the three columns' texts joined, with their lengths
    sql = f"""
        SELECT array_agg(n), string_agg(convert_to(p, 'UTF8'), ''::bytea),
               array_agg(octet_length(p)), string_agg(convert_to(c, 'UTF8'), ''::bytea),
               array_agg(octet_length(c)), string_agg(convert_to(r, 'UTF8'), ''::bytea),
               array_agg(octet_length(r))
        FROM ({inner}) AS t(n, p, c, r)
    """
    kept, b_won = [], []
    for chunk in chunks:
        kept.append(chunk.kept)
        b_won.append(chunk.b_won)
    kept, b_won = np.concatenate(kept or [np.zeros(0, np.int64)]), np.concatenate(b_won or [[]])
    size = writer.batch_rows
    groups = [(kept[k : k + size], b_won[k : k + size]) for k in range(0, len(kept), size)]

    def fetch(cursor, ids, won):
        cursor.execute(sql, [ids.tolist(), won.astype(bool).tolist()], binary=True)
        order, *columns = cursor.fetchone()
        arrays = [_strings(columns[k], columns[k + 1]) for k in (0, 2, 4)]
        order = np.array(order, dtype=np.int64)
        if (np.diff(order) != 1).any():  # aggregated in another order: put it in id order
            arrays = [a.take(np.argsort(order, kind="stable")) for a in arrays]
        return pa.Table.from_arrays(arrays, schema=writer.schema)

    if snapshot is None or len(groups) < 2:
        connection.ensure_connection()
        with text_cache.nested_loops(), psycopg.Cursor(connection.connection) as cursor:
            for ids, won in groups:
                writer.write_table(fetch(cursor, ids, won))
        return
    for table in text_cache.in_parallel(fetch, groups, snapshot):
        writer.write_table(table)


def _strings(data: bytes, sizes: list[int]) -> pa.Array:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(sizes), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


PARQUET_SQL = """
    SELECT k.n, {prompt}, CASE WHEN k.b THEN b.content ELSE a.content END,
           CASE WHEN k.b THEN a.content ELSE b.content END
    FROM unnest(%s::int8[], %s::bool[]) WITH ORDINALITY AS k(id, b, n)
    JOIN {items} i ON i.id = k.id
    JOIN {messages} a ON a.id = i.response_id
    JOIN {messages} b ON b.id = i.response_b_id
    LEFT JOIN {messages} p
      ON p.conversation_id = i.conversation_id AND p.position = 0 AND p.candidate = 0
"""
