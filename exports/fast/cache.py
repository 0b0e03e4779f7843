"""A local cache of each pair's text, already encoded as the JSON strings a line is made of.

Why: an export line is ``{"prompt":P,"chosen":C,"rejected":R}``, and P, C and R never change
once a pair exists: messages are only ever inserted (importers), the admin shows them read
only, and an item's conversation and responses are fixed when it is created. Encoding them
once, rather than reading 2 KB of text a line out of PostgreSQL and escaping it on every
export, is what lets an export write 100,000+ lines a second (bench/RESULTS.md).

Layout, per database and project (``EXPORT_CACHE_DIR``/<database key>/project-<id>/):
``current`` names the generation in use; a generation is ``<name>.arrow`` (Arrow IPC
record batches of ``BATCH`` pairs in id order: id and the three JSON strings) and
``<name>.npy`` (ids and creation times of those pairs, for look-up and checking). A new
generation is written beside the old one and ``current`` is replaced atomically, so
concurrent exports always see a complete generation.

Checks: an entry is used only if the item id and the item's creation time (to the
microsecond) match the database, under a key of the server, port, database name and oid;
anything missing or different is (re)encoded from the database first.
"""

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
from django.conf import settings
from django.db import connection

from conversations.models import Message, MessageRole
from ratings.models import Item, TaskKind

BATCH = 2048
# a batch of n pairs: their prompts (n rows) and responses (2n rows: A then B of each pair,
# so that the chosen one of pair k is row 2k + b_won); IPC batches have one length, so the
# prompts column has the n prompts followed by n empty values
SCHEMA = pa.schema([("prompt", pa.binary()), ("response", pa.binary())])


def cache_root() -> Path:
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


def prompt_sql() -> str:
    """``prompt_text()`` (exports/exporters.py) in SQL, for the item ``i`` and its response
    ``a``, with ``p`` the conversation's first main-line message: the user message alone, or
    role-labelled turns joined by blank lines ("" when there is none)."""
    labels = " ".join(f"WHEN '{role}' THEN '{role.capitalize()}'" for role in MessageRole.values)
    messages = Message._meta.db_table
    return f"""
        CASE WHEN a.position = 1 AND p.role = 'user' THEN p.content ELSE (
            SELECT CASE WHEN count(*) = 1 AND bool_and(m.role = 'user')
                        THEN string_agg(m.content, '')
                        ELSE coalesce(string_agg((CASE m.role {labels} END) || ': ' || m.content,
                                                 E'\\n\\n' ORDER BY m.position), '') END
            FROM {messages} m
            WHERE m.conversation_id = i.conversation_id AND m.candidate = 0
              AND m.position < a.position
        ) END"""


def text_sql(where: str) -> str:
    """The prompt text and both responses of the pairs ``where`` selects (on ``i``)."""
    messages = Message._meta.db_table
    return f"""
        SELECT i.id, (extract(epoch FROM i.created_at) * 1000000)::int8, {prompt_sql()},
               a.content, b.content
        FROM {Item._meta.db_table} i
        JOIN {messages} a ON a.id = i.response_id
        JOIN {messages} b ON b.id = i.response_b_id
        LEFT JOIN {messages} p
          ON p.conversation_id = i.conversation_id AND p.position = 0 AND p.candidate = 0
        WHERE {where}
        ORDER BY i.id"""


class FragmentCache:
    """One project's pairs as JSON fragments; see the module docstring."""

    def __init__(self, project_id: int):
        self.dir = cache_root() / _database_key() / f"project-{project_id}"
        self.project_id = project_id
        # per cached pair, in id order: id, created_at (us), batch number, row in the batch
        self.index = np.zeros((4, 0), dtype=np.int64)
        self.name: str | None = None
        try:
            name = (self.dir / "current").read_text().strip()
            index = np.load(self.dir / f"{name}.npy")
            if index.shape[0] == 4 and (self.dir / f"{name}.arrow").exists():
                self.index, self.name = index, name
        except (OSError, ValueError):
            pass  # no usable generation yet: everything counts as missing
        self.built = 0  # pairs encoded by ``ensure``

    def positions(self, ids: np.ndarray, stamps: np.ndarray) -> np.ndarray | None:
        """Where each id is in the cache, or None unless every one is there and current."""
        cached = self.index[0]
        if not len(cached):
            return None if len(ids) else np.zeros(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(cached, ids), len(cached) - 1)
        if np.array_equal(cached[pos], ids) and np.array_equal(self.index[1][pos], stamps):
            return pos
        return None

    def ensure(self, ids: np.ndarray, stamps: np.ndarray) -> np.ndarray:
        """The positions of ``ids``, encoding what is missing first: the pairs after the last
        cached id when only those are missing, else every pair of the project again."""
        pos = self.positions(ids, stamps)
        if pos is not None:
            return pos
        cached = self.index[0]
        known = np.isin(ids, cached)
        reuse = (
            len(cached) > 0
            and self.positions(ids[known], stamps[known]) is not None
            and ids[~known].min() > cached[-1]
        )
        self._write(after=int(cached[-1]) if reuse else 0, keep_old=reuse)
        pos = self.positions(ids, stamps)
        if pos is None:
            raise CacheMiss("the cached text does not match the pairs just read")
        return pos

    def _write(self, *, after: int, keep_old: bool) -> None:
        """A new generation: the old one's batches (``keep_old``), then the pairs after
        ``after`` encoded from the database; then it becomes ``current``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        arrow_tmp = self.dir / f".{name}.arrow.partial"
        index_tmp = self.dir / f".{name}.npy.partial"
        parts = [self.index] if keep_old else []
        batches = int(self.index[2].max()) + 1 if keep_old and self.index.shape[1] else 0
        try:
            with pa.OSFile(str(arrow_tmp), "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as out:
                if keep_old:
                    with self.reader() as old:
                        for k in range(old.num_record_batches):
                            out.write_batch(old.get_batch(k))
                for ids, stamps, batch in self._encode(after):
                    out.write_batch(batch)
                    n = len(ids)
                    parts.append(
                        np.stack([ids, stamps, np.full(n, batches), np.arange(n, dtype=np.int64)])
                    )
                    batches += 1
                    self.built += n
            index = np.concatenate(parts, axis=1) if parts else np.zeros((4, 0), np.int64)
            with index_tmp.open("wb") as f:
                np.save(f, index)
            os.replace(index_tmp, self.dir / f"{name}.npy")
            os.replace(arrow_tmp, self.dir / f"{name}.arrow")
            (self.dir / ".current.partial").write_text(name)
            os.replace(self.dir / ".current.partial", self.dir / "current")
        except BaseException:
            arrow_tmp.unlink(missing_ok=True)
            index_tmp.unlink(missing_ok=True)
            raise
        old, self.name, self.index = self.name, name, index
        if old:  # an export still reading it keeps its open file
            for stale in (f"{old}.arrow", f"{old}.npy"):
                (self.dir / stale).unlink(missing_ok=True)

    def _encode(self, after: int):
        """Batches of the project's pairs with id > ``after``, read with a server-side cursor
        and encoded with the writer's JSON encoder (orjson: a string inside a line is
        exactly ``orjson.dumps`` of that string)."""
        sql = text_sql("i.project_id = %s AND i.kind = %s AND i.id > %s")
        with connection.connection.cursor(name=f"export_text_{uuid.uuid4().hex[:8]}") as cur:
            cur.itersize = BATCH
            cur.execute(sql, [self.project_id, TaskKind.PAIRWISE.value, after])
            dumps = orjson.dumps
            while rows := cur.fetchmany(BATCH):
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                stamps = np.array([r[1] for r in rows], dtype=np.int64)
                prompts = [dumps(r[2]) for r in rows]
                batch = pa.record_batch(
                    [
                        pa.array(prompts + [b""] * len(prompts), pa.binary()),
                        pa.array([dumps(x) for r in rows for x in (r[3], r[4])], pa.binary()),
                    ],
                    schema=SCHEMA,
                )
                del prompts
                del rows
                yield ids, stamps, batch

    def reader(self) -> pa.ipc.RecordBatchFileReader:
        """The current generation's batches, read from the file (not mapped) one at a time,
        so that only the batch in use is in memory."""
        return pa.ipc.open_file(pa.OSFile(str(self.dir / f"{self.name}.arrow")))


class CacheMiss(Exception):
    pass


def clear(project_id: int | None = None) -> None:
    """Remove one project's cached text (or all of this database's)."""
    base = cache_root() / _database_key()
    shutil.rmtree(base / f"project-{project_id}" if project_id else base, ignore_errors=True)
