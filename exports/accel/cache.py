"""A local cache of each pair's text, already encoded as the JSON strings a line is made of.

Why: an export line is ``{"prompt":P,"chosen":C,"rejected":R}``, and P, C and R never change
once a pair exists: messages are only ever inserted (importers), the admin shows them read
only, and an item's conversation and responses are fixed when it is created. Encoding them
once, rather than reading 2 KB of text a line out of PostgreSQL and escaping it on every
export, is what lets an export write 100,000+ lines a second (bench/RESULTS.md).

Layout, per database and project (``EXPORT_CACHE_DIR``/<database key>/project-<id>/):
``current`` names the generation in use; a generation is ``<name>.npy`` (per pair: id,
creation time, batch and row, for look-up and checking) and its data: Arrow IPC record
batches of up to ``BATCH`` pairs in id order (see ``SCHEMA``; about 2 KB a pair) in
``<name>.arrow``, or, when pairs were appended, in the files ``<name>.segments`` lists
(earlier generations' files, then ``<name>.arrow`` with the new pairs only, so that adding
pairs to a large project does not copy its cache; at most ``MAX_SEGMENTS``). A new
generation is written beside the old one and ``current`` is replaced atomically, so
concurrent exports always see a complete generation; an export that finds its generation
gone meanwhile falls back to the general path (``CacheMiss``). Parquet's cache
(``TextCache``: the texts themselves, not JSON) has the same layout in the project's
``text`` folder.

Checks: an entry is used only if the item id and the item's creation time (to the
microsecond) match the database, under a key of the server, port, database name and oid;
anything missing or different is (re)encoded from the database first.
"""

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import psycopg
import pyarrow as pa
from django.conf import settings
from django.db import connection

from exports.accel.decisions import int64s
from exports.accel.reading import (
    in_parallel,
    nested_loops,
    server_encodes_like_orjson,
    text_sql,
    unpack_batch,
)
from ratings.models import Item, TaskKind

# pairs per cache batch: also the unit the cache is built in, each connection holding one or
# two in flight; 1,024 rather than 2,048 lowered a cold 2x Parquet export's peak RSS from
# 291-301 MB to 269-274 MB at the same speed, and warm exports were no slower (bench/RESULTS.md)
BATCH = 1024
# data files a generation may span: appending new pairs writes only them, into a file of
# their own, until a generation would have more; then it is written into one file again
MAX_SEGMENTS = 16
# files in a project's cache folder that the current generation does not use are removed
# by the next writer once they are this old (see ``FragmentCache._sweep``)
ORPHAN_SECONDS = 3600
# a batch of n pairs: their prompts (n rows) and responses (2n rows: A then B of each pair,
# so that the chosen one of pair k is row 2k + b_won); IPC batches have one length, so the
# prompts column has the n prompts followed by n empty values
SCHEMA = pa.schema([("prompt", pa.binary()), ("response", pa.binary())])
# the same layout with the texts themselves (UTF-8, unescaped): Parquet's columns
TEXT_SCHEMA = pa.schema([("prompt", pa.string()), ("response", pa.string())])


def cache_root() -> Path:
    """``EXPORT_CACHE_DIR``, or ``cache/exports`` beside the media folder without it."""
    configured = getattr(settings, "EXPORT_CACHE_DIR", None)
    if configured:
        return Path(configured)
    return Path(settings.MEDIA_ROOT).parent / "cache" / "exports"


def _database_key() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(inet_server_addr()::text, 'local'), current_setting('port'),"
            " current_database(), (SELECT oid FROM pg_database"
            " WHERE datname = current_database())"
        )
        parts = cursor.fetchone()
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


class FragmentCache:
    """One project's pairs as JSON fragments; see the module docstring."""

    SUBDIR = ""
    SCHEMA = SCHEMA

    def __init__(self, project_id: int):
        self.dir = cache_root() / _database_key() / f"project-{project_id}" / self.SUBDIR
        self.project_id = project_id
        # per cached pair, in id order: id, created_at (us), batch number, row in the batch
        self.index = np.zeros((4, 0), dtype=np.int64)
        self.name: str | None = None
        self.segments: list[str] = []  # the generation's data files, in batch order
        try:
            name = (self.dir / "current").read_text().strip()
            index = np.load(self.dir / f"{name}.npy")
            segments = _read_segments(self.dir, name)
            if index.shape[0] == 4 and all((self.dir / f"{g}.arrow").exists() for g in segments):
                self.index, self.name, self.segments = index, name, segments
        except (OSError, ValueError):
            pass  # no usable generation yet: everything counts as missing
        self.built = 0  # pairs encoded by ``ensure`` or ``rebuild``

    def positions(self, ids: np.ndarray, stamps: np.ndarray) -> np.ndarray | None:
        """Where each id is in the cache, or None unless every one is there and current."""
        cached = self.index[0]
        if not len(cached):
            return None if len(ids) else np.zeros(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(cached, ids), len(cached) - 1)
        if np.array_equal(cached[pos], ids) and np.array_equal(self.index[1][pos], stamps):
            return pos
        return None

    def ensure(
        self, ids: np.ndarray, stamps: np.ndarray, *, snapshot: str | None = None
    ) -> np.ndarray:
        """The positions of ``ids``, encoding what is missing first: the pairs after the last
        cached id when only those are missing, else every pair of the project again. With
        ``snapshot`` (an exported snapshot of the caller's transaction), the encoding runs
        on one connection per CPU, each reading a share of the pairs in that snapshot."""
        pos = self.positions(ids, stamps)
        if pos is not None:
            return pos
        for _ in self.rebuild(ids, stamps, snapshot=snapshot):
            pass
        pos = self.positions(ids, stamps)
        if pos is None:
            raise CacheMiss("the cached text does not match the pairs just read")
        return pos

    def rebuild(self, ids: np.ndarray, stamps: np.ndarray, *, snapshot: str | None = None):
        """A new generation for the pairs ``ids`` (as ``ensure`` decides what to encode),
        batch by batch: yields (ids, creation times, batch) of each of its batches in id
        order as it is written; it becomes ``current`` once the last one has been taken."""
        cached = self.index[0]
        known = np.isin(ids, cached)
        reuse = (
            len(cached) > 0
            and self.positions(ids[known], stamps[known]) is not None
            and ids[~known].min() > cached[-1]
        )
        return self._write(after=int(cached[-1]) if reuse else 0, keep_old=reuse, snapshot=snapshot)

    def batches(self):
        """(ids, creation times, batch) of the current generation's batches, in id order."""
        if not self.index.shape[1]:
            return
        bounds = np.searchsorted(self.index[2], np.arange(int(self.index[2][-1]) + 2))
        with self.reader() as reader:
            for k in range(len(bounds) - 1):
                lo, hi = bounds[k], bounds[k + 1]
                yield self.index[0][lo:hi], self.index[1][lo:hi], reader.get_batch(k)

    def _write(self, *, after: int, keep_old: bool, snapshot: str | None):
        """A new generation: the old one's batches (``keep_old``), then the pairs after
        ``after`` encoded from the database; then it becomes ``current``. A generator:
        yields (ids, creation times, batch) of every batch of the generation, old ones
        included. The old batches stay in their files (the new generation lists them as its
        first segments, and only the new pairs are written) unless the generation would
        have more than ``MAX_SEGMENTS`` files: then everything is written into one."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        arrow_tmp = self.dir / f".{name}.arrow.partial"
        index_tmp = self.dir / f".{name}.npy.partial"
        batches = int(self.index[2].max()) + 1 if keep_old and self.index.shape[1] else 0
        reuse = keep_old and 0 < len(self.segments) < MAX_SEGMENTS
        segments = [*self.segments, name] if reuse else [name]
        try:
            schema = self.SCHEMA
            with pa.OSFile(str(arrow_tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as out:
                if keep_old:
                    for old in self.batches():
                        if not reuse:
                            out.write_batch(old[2])
                        yield old
                todo = self._todo(after)
                # the index is filled in place: built from per-batch pieces joined at the
                # end, it took twice its size (10 MB more at 330,000 pairs) at the peak
                filled = self.index.shape[1] if keep_old else 0
                index = np.empty((4, filled + len(todo)), dtype=np.int64)
                index[:, :filled] = self.index[:, :filled]
                # closed explicitly when the caller stops early: its threads hold connections
                with contextlib.closing(self._encode(todo, snapshot)) as encoded:
                    for ids, stamps, batch in encoded:
                        out.write_batch(batch)
                        n = len(ids)
                        if filled + n > index.shape[1]:  # pairs committed since ``todo``
                            index = np.concatenate(
                                [index[:, :filled], np.empty((4, n), np.int64)], axis=1
                            )
                        block = index[:, filled : filled + n]
                        block[0], block[1], block[2], block[3] = ids, stamps, batches, np.arange(n)
                        filled += n
                        batches += 1
                        self.built += n
                        yield ids, stamps, batch
            index = index[:, :filled]
            with index_tmp.open("wb") as f:
                np.save(f, index)
            os.replace(index_tmp, self.dir / f"{name}.npy")
            os.replace(arrow_tmp, self.dir / f"{name}.arrow")
            if len(segments) > 1:
                _write_atomically(self.dir / f"{name}.segments", "\n".join(segments))
            _write_atomically(self.dir / "current", name)
        except BaseException:
            arrow_tmp.unlink(missing_ok=True)
            index_tmp.unlink(missing_ok=True)
            raise
        old, old_segments = self.name, self.segments
        self.name, self.index, self.segments = name, index, segments
        if old:  # an export still reading them keeps its open files
            stale = [f"{old}.npy", f"{old}.segments"]
            stale += [f"{g}.arrow" for g in old_segments if g not in segments]
            for path in stale:
                (self.dir / path).unlink(missing_ok=True)
        self._sweep()

    def _sweep(self) -> None:
        """Remove what no generation in use needs and nobody wrote for ``ORPHAN_SECONDS``:
        files of a generation that lost a race with a concurrent writer, or partial files
        of a process that was killed. Recent files may be another writer's work in progress;
        a reader that still has one open keeps reading it."""
        keep = {"current", f"{self.name}.npy", f"{self.name}.segments"}
        keep |= {f"{g}.arrow" for g in self.segments}
        cutoff = time.time() - ORPHAN_SECONDS
        for path in self.dir.iterdir():
            try:
                if path.is_file() and path.name not in keep and path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                pass  # removed meanwhile by another writer's sweep

    def mode(self) -> str:
        """How the server sends the text (``text_sql``): JSON strings when it encodes them
        as the writer does (orjson: a string inside a line is exactly ``orjson.dumps`` of
        that string, checked on ``PROBE``), else the text, for Python to encode."""
        return "json" if server_encodes_like_orjson() else "text"

    def _todo(self, after: int) -> np.ndarray:
        """The ids of the project's pairs after ``after``, in order."""
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                f"SELECT string_agg(int8send(id), ''::bytea) FROM {Item._meta.db_table}"
                " WHERE project_id = %s AND kind = %s AND id > %s",
                [self.project_id, TaskKind.PAIRWISE.value, after],
                binary=True,
            )
            return np.sort(int64s(cursor.fetchone()[0]))

    def _encode(self, todo: np.ndarray, snapshot: str | None):
        """Batches of the pairs ``todo`` (ids in order), as ``mode`` says."""
        mode = self.mode()
        sql = text_sql("i.project_id = %s AND i.kind = %s AND i.id BETWEEN %s AND %s", mode=mode)
        bounds = [
            (int(todo[k]), int(todo[min(k + BATCH, len(todo)) - 1]))
            for k in range(0, len(todo), BATCH)
        ]
        params = [self.project_id, TaskKind.PAIRWISE.value]

        def fetch(cursor, lo: int, hi: int):
            if mode != "text":
                cursor.execute(packed, [*params, lo, hi], binary=True)
                return unpack_batch(self.SCHEMA, *cursor.fetchone())
            cursor.execute(sql, [*params, lo, hi])
            rows = cursor.fetchall()
            dumps = orjson.dumps
            batch = pa.record_batch(
                [
                    pa.array([dumps(r[2]) for r in rows] + [b""] * len(rows), pa.binary()),
                    pa.array([dumps(x) for r in rows for x in (r[3], r[4])], pa.binary()),
                ],
                schema=SCHEMA,
            )
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            return ids, np.array([r[1] for r in rows], dtype=np.int64), batch

        # as bytes from the server, a batch comes as one row: ids, times, and the fragments
        # joined into two byte strings with their lengths (no Python object per pair)
        packed = f"""
            SELECT array_agg(id), array_agg(stamp), string_agg(p, ''::bytea),
                   array_agg(octet_length(p)), string_agg(a || b, ''::bytea),
                   array_agg(octet_length(a)), array_agg(octet_length(b))
            FROM ({sql.replace("ORDER BY i.id", "")}) AS t(id, stamp, p, a, b)
        """

        if snapshot is None or len(bounds) < 2:
            connection.ensure_connection()
            with nested_loops(), psycopg.Cursor(connection.connection) as cursor:
                for lo, hi in bounds:
                    yield fetch(cursor, lo, hi)
            return
        yield from in_parallel(fetch, bounds, snapshot)

    def reader(self) -> "SegmentReader":
        """The current generation's batches, read from its files (not mapped) one at a
        time, so that only the batch in use is in memory. Every file is opened at once, so
        a generation replaced meanwhile stays readable."""
        try:
            return SegmentReader([self.dir / f"{g}.arrow" for g in self.segments])
        except FileNotFoundError:  # replaced by a concurrent export since we looked
            raise CacheMiss("the cache generation in use was replaced") from None


class SegmentReader:
    """Batches numbered across a generation's files, as the index numbers them."""

    def __init__(self, paths: list[Path]):
        self.files: list[pa.OSFile] = []
        self.readers: list[pa.ipc.RecordBatchFileReader] = []
        try:
            for path in paths:
                self.files.append(pa.OSFile(str(path)))
                self.readers.append(pa.ipc.open_file(self.files[-1]))
        except BaseException:
            self.close()
            raise
        self.starts = np.cumsum([0] + [r.num_record_batches for r in self.readers])

    def get_batch(self, k: int) -> pa.RecordBatch:
        segment = int(np.searchsorted(self.starts, k, side="right")) - 1
        if not 0 <= segment < len(self.readers):
            raise CacheMiss(f"the cache has no batch {k}")
        return self.readers[segment].get_batch(k - int(self.starts[segment]))

    def close(self) -> None:
        self.readers.clear()
        for f in self.files:
            f.close()

    def __enter__(self) -> "SegmentReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_segments(folder: Path, name: str) -> list[str]:
    """A generation's data files: listed in ``<name>.segments`` when there are several."""
    try:
        return (folder / f"{name}.segments").read_text().split()
    except FileNotFoundError:
        return [name]


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


class TextCache(FragmentCache):
    """One project's pairs as their texts (UTF-8, unescaped), for Parquet: the same layout
    and checks as the JSON fragments (``TEXT_SCHEMA``), in the project's ``text`` folder."""

    SUBDIR = "text"
    SCHEMA = TEXT_SCHEMA

    def mode(self) -> str:
        return "utf8"


class CacheMiss(Exception):
    pass


def clear(project_id: int | None = None) -> None:
    """Remove one project's cached text (or all of this database's)."""
    base = cache_root() / _database_key()
    shutil.rmtree(base / f"project-{project_id}" if project_id else base, ignore_errors=True)
