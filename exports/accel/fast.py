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
3. Parquet: each row group (``batch_rows`` pairs, the general path's groups) is taken by
   Arrow from a second cache holding the texts themselves (``cache.TextCache``), and encoded
   and written by a second thread; a project's first Parquet export builds that cache (the
   texts sent by PostgreSQL on one connection per CPU) and writes from it as it comes.
Memory stays flat: a cache batch or a row group at a time, and arrays of a number per pair.
"""

import contextlib
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection, transaction

from config import accel
from conversations.models import Project
from exports.accel import cache as text_cache
from exports.accel import decisions
from exports.accel.cache import CacheMiss
from exports.accel.snapshot import read_ahead, serial_reads
from exports.canonical import ExportFilters
from exports.exporters import REGISTRY
from exports.writers import RowWriter
from ratings.models import TaskKind

# format -> how the three JSON strings become a line: (before P, before C, before R, end)
LINES = {
    "trl": (b'{"prompt":', b',"chosen":', b',"rejected":', b"}\n"),
}
# Arrow scalars, made when the module is imported: the first Arrow conversion in a process
# imports pandas (a third of a second), which belongs to start-up, not to every export
LINE_PARTS = tuple(pa.scalar(x, pa.binary()) for x in LINES["trl"])
NOTHING = pa.scalar(b"", pa.binary())
# Arrow's buffers from jemalloc rather than pyarrow's default, mimalloc, unless the operator
# chose (ARROW_DEFAULT_MEMORY_POOL): with mimalloc the export's peak RSS was 25-60 MB higher
# (a 2x Parquet export 323 MB against 262 MB) for the same 10-31 MB of Arrow data, its
# per-thread pages kept and partly backed by huge pages; the speed is the same
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    # a pyarrow built without jemalloc keeps its default
    with contextlib.suppress(NotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())
DEFAULT_FILTERS = ExportFilters()
SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


__all__ = ["CacheMiss", "refusal", "run_fast_export"]


def refusal(options) -> str | None:
    """Why the fast path does not cover these options, or None when it does."""
    if not accel.enabled("export_cache"):
        return "switched off (RATELOOP_ACCEL) or not PostgreSQL"
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
                # closed explicitly on failure: a reading thread holds a transaction open
                with contextlib.closing(_decided(project, options, ids, ahead=ahead)) as source:
                    for chunk in source:
                        totals.add(chunk)
                        if progress is not None:
                            progress(totals.records_read, len(ids))
                        yield chunk

            with contextlib.closing(decided()) as chunks:
                if options.file_type == "jsonl":
                    store = text_cache.FragmentCache(project.pk)
                    # encodes what is missing (a cold cache), in parallel where it can
                    where = store.ensure(ids, stamps, snapshot=_snapshot() if ahead else None)
                    _write_jsonl(store, ids, where, chunks, writer)
                else:
                    store = text_cache.TextCache(project.pk)
                    snapshot = _snapshot() if ahead else None
                    if store.positions(ids, stamps) is None:  # cold: written as it is built
                        batches = store.rebuild(ids, stamps, snapshot=snapshot)
                    else:
                        batches = store.batches()
                    _write_parquet(batches, ids, stamps, chunks, writer)
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
    """Writes (and hashes) finished bytes, or encodes and writes Parquet row groups, in a
    second thread, at most two pieces behind: both release the interpreter lock, so Arrow
    builds the next piece meanwhile."""

    def __init__(self, writer: RowWriter):
        self.writer = writer
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-writer")
        self.pending: list = []

    def write(self, data, rows: int) -> None:
        self._submit(self.writer.write_bytes, data, rows)

    def write_table(self, table: pa.Table) -> None:
        self._submit(self.writer.write_table, table)

    def _submit(self, *call) -> None:
        self.pending.append(self.pool.submit(*call))
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
        if reader is not None:
            reader.close()
        del reader, batch


def _write_parquet(batches, ids: np.ndarray, stamps: np.ndarray, chunks, writer: RowWriter):
    """Write the kept pairs a row group (``batch_rows`` rows, as the general path writes
    them) at a time, each taken from the project's cached texts: ``batches`` yields the
    cache's (ids, creation times, batch) in id order, from its file or as it is built.
    Every pair taken is checked against its id and creation time (``CacheMiss``)."""
    source = iter(batches)
    window: list = []  # the cache batches the current group may need, in id order
    background = _Background(writer)
    try:
        for kept, won in _groups(chunks, writer.batch_rows):
            while window and window[0][0][-1] < kept[0]:
                window.pop(0)
            while not window or window[-1][0][-1] < kept[-1]:
                loaded = next(source, None)
                if loaded is None:
                    raise CacheMiss("the cached text does not hold every pair")
                if loaded[0][-1] >= kept[0]:
                    window.append(loaded)
            want = stamps[np.searchsorted(ids, kept)]
            columns: tuple[list, list, list] = ([], [], [])
            taken = 0
            for batch_ids, batch_stamps, batch in window:
                lo = np.searchsorted(kept, batch_ids[0])
                hi = np.searchsorted(kept, batch_ids[-1], side="right")
                if lo == hi:
                    continue
                rows = np.searchsorted(batch_ids, kept[lo:hi])
                if not (
                    np.array_equal(batch_ids[rows], kept[lo:hi])
                    and np.array_equal(batch_stamps[rows], want[lo:hi])
                ):
                    raise CacheMiss("the cached text does not match the pairs just read")
                chosen = 2 * rows + won[lo:hi]  # see cache.SCHEMA
                columns[0].append(batch.column(0).take(rows))
                columns[1].append(batch.column(1).take(chosen))
                columns[2].append(batch.column(1).take(4 * rows + 1 - chosen))
                taken += hi - lo
            if taken != len(kept):
                raise CacheMiss("the cached text does not hold every pair")
            arrays = [c[0] if len(c) == 1 else pa.concat_arrays(c) for c in columns]
            background.write_table(pa.Table.from_arrays(arrays, schema=writer.schema))
        for _ in source:  # a cache being built becomes current once it is complete
            pass
    finally:
        try:
            background.finish()
        finally:
            if hasattr(source, "close"):  # a build stopped early removes its partial file
                source.close()


def _groups(chunks, size: int):
    """(kept ids, B won) of ``size`` kept pairs at a time, the last one shorter."""
    kept, won, n = [], [], 0
    for chunk in chunks:
        kept.append(chunk.kept)
        won.append(chunk.b_won.astype(np.int64))
        n += len(chunk.kept)
        while n >= size:
            all_kept, all_won = np.concatenate(kept), np.concatenate(won)
            yield all_kept[:size], all_won[:size]
            kept, won, n = [all_kept[size:]], [all_won[size:]], n - size
    if n:
        yield np.concatenate(kept), np.concatenate(won)
