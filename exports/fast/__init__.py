"""The fast export: the common preference export without building a record per pair.

It covers the format ``trl`` (prompt, chosen, rejected as strings) with majority
aggregation, no train/test split, the default, gold, external, flagged-rater and date
filters, any ``min_raters``, ``min_agreement`` and ``both_bad``, as JSONL (optionally gzip)
and Parquet, on PostgreSQL. ``run_export`` (exports/pipeline.py) takes it for exactly those
requests; everything else goes the general way. The files and the manifest are byte for
byte what the general path writes (the tests compare both on the same projects), except
the manifest's time and a gzip header's time.

How (bench/RESULTS.md has the measurements):
1. one query counts every pair's votes; majority and rules are array arithmetic
   (``decisions.py``); one more query collects the kept pairs' raters and versions;
2. JSONL: every line is ``{"prompt":P,"chosen":C,"rejected":R}`` with P, C, R the JSON
   encodings of three strings that never change once a pair exists; they are kept encoded
   in a local cache (``cache.py``; encoded from the database on first use), and lines are
   joined from them a batch at a time by Arrow, with no Python object per line;
3. Parquet: the kept pairs' text is read in id order, 2,000 rows at a time (the general
   path's row groups), and written through the same writer.
Memory stays flat: one cache batch (or one row group) and a few arrays of one number per pair.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection

from conversations.models import Project
from exports.canonical import ExportFilters, count_items, serial_reads
from exports.exporters import REGISTRY
from exports.fast import cache as text_cache
from exports.fast.decisions import decide, manifest_sets
from exports.writers import RowWriter
from ratings.models import Item, TaskKind

# format -> how the three JSON strings become a line: (before P, before C, before R, end)
LINES = {
    "trl": (b'{"prompt":', b',"chosen":', b',"rejected":', b"}\n"),
}
DEFAULT_FILTERS = ExportFilters()


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
    f = options.filters
    exporter = REGISTRY[options.format]
    total = count_items(project, TaskKind.PAIRWISE, f)
    splits, names, partial = output_names(options, out_dir, base_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = RowWriter(
        partial["all"],
        options.file_type,
        options.compress,
        exporter.schema,
        python_json=exporter.python_json,
    )
    try:
        with serial_reads(snapshot=True):
            decisions = decide(project, options)
            rubric_versions, guideline_versions, raters = manifest_sets(project, f, decisions.kept)

            def report(done: int) -> None:
                if progress is not None and decisions.kept.size:
                    progress(decisions.records_read * done // decisions.kept.size, total)

            if options.file_type == "jsonl":
                _write_jsonl(project, options, decisions, writer, report)
            else:
                _write_parquet(decisions, writer, report)
        info = writer.close()
    except BaseException:
        writer.abort()
        raise
    if progress is not None:
        progress(decisions.records_read, total)
    counts = {
        "records_read": decisions.records_read,
        "rows_written": {"all": info.rows},
        "dropped": decisions.dropped,
        "raters": raters,
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
        rubric_versions=rubric_versions,
        guideline_versions=guideline_versions,
        created_by=created_by,
    )


def _write_jsonl(project, options, decisions, writer: RowWriter, report) -> None:
    store = text_cache.FragmentCache(project.pk)
    pos = store.ensure(decisions.kept, decisions.stamps)
    batch_of, row_of = store.index[2][pos], store.index[3][pos]
    before_p, before_c, before_r, end = (pa.scalar(x, pa.binary()) for x in LINES[options.format])
    nothing = pa.scalar(b"", pa.binary())
    # kept pairs are in id order, and so are the cache's batches: one pass over the file
    starts = np.flatnonzero(np.diff(batch_of, prepend=-1)) if len(pos) else []
    bounds = [*starts, len(pos)]
    with store.reader() as reader:
        for s, e in zip(bounds[:-1], bounds[1:], strict=True):
            batch = reader.get_batch(int(batch_of[s]))
            rows = pa.array(row_of[s:e])
            b_won = pa.array(decisions.b_won[s:e])
            p = batch.column(1).take(rows)
            a = batch.column(2).take(rows)
            b = batch.column(3).take(rows)
            lines = pc.binary_join_element_wise(
                before_p,
                p,
                before_c,
                pc.if_else(b_won, b, a),
                before_r,
                pc.if_else(b_won, a, b),
                end,
                nothing,
            )
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
            first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
            writer.write_bytes(memoryview(lines.buffers()[2])[first:last], len(lines))
            del batch, p, a, b, lines
            report(e)


PARQUET_SQL = """
    SELECT {prompt}, CASE WHEN k.b THEN b.content ELSE a.content END,
           CASE WHEN k.b THEN a.content ELSE b.content END
    FROM (SELECT * FROM unnest(%s::int8[], %s::bool[]) AS k(id, b) ORDER BY id OFFSET 0) k
    JOIN {items} i ON i.id = k.id
    JOIN {messages} a ON a.id = i.response_id
    JOIN {messages} b ON b.id = i.response_b_id
    LEFT JOIN {messages} p
      ON p.conversation_id = i.conversation_id AND p.position = 0 AND p.candidate = 0
    ORDER BY k.id
"""


def _write_parquet(decisions, writer: RowWriter, report) -> None:
    from conversations.models import Message

    sql = PARQUET_SQL.format(
        prompt=text_cache.prompt_sql(),
        items=Item._meta.db_table,
        messages=Message._meta.db_table,
    )
    with connection.cursor() as cursor:
        # one index look-up per message, in the order of the kept ids: no sort of the text
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
    done = 0
    if not len(decisions.kept):
        return
    with connection.connection.cursor(name="export_parquet") as cur:
        cur.itersize = writer.batch_rows
        cur.execute(sql, [decisions.kept.tolist(), decisions.b_won.tolist()])
        while rows := cur.fetchmany(writer.batch_rows):
            columns = list(zip(*rows, strict=True))
            del rows
            table = pa.Table.from_arrays(
                [pa.array(c, pa.string()) for c in columns], schema=writer.schema
            )
            writer.write_table(table)
            done += table.num_rows
            del columns, table
            report(done)
