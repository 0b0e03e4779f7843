"""``quality_copy``: a quality run's read of the current judgments with COPY (PostgreSQL),
of only the new ones since the last run.

The rows come through ``COPY (SELECT ...) TO STDOUT`` straight into pandas, which is several
times faster than building model instances (the plain read, a QuerySet, is in
``ratings.quality_data.load``); both give the same frames (ratings/quality_columns.py).

Incremental reading (``QUALITY_CACHE_DIR`` set): after a full read the frames are
kept on disk (Arrow IPC files, one directory per database and project). The next run reads
only the judgments added since (ids above the cached ones) and drops the cached judgment of
any (item, rater) the new ones replace: a judgment stops being current only when a newer
version of the same rater's judgment on the same item is written in the same transaction
(edits, imports). The merged frames are then checked against the database's fingerprint of
the current judgments (count, sum and maximum of their ids); any difference (a transaction
that committed a lower id late, a restored database, a code change) falls back to a full
read. See ratings/accel/README.md.
"""

import io
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction

from conversations.models import Message, Project
from ratings.models import Criterion, Item, Judgment, Score
from ratings.quality_columns import (
    INT_COLUMNS,
    JUDGMENT_COLUMNS,
    SCORE_COLUMNS,
    SCORE_CONTEXT,
    Fingerprint,
)

logger = logging.getLogger(__name__)

# Bump when the cached columns or their meaning change: older caches are then ignored.
CACHE_FORMAT = 2  # 2: is_external is 0 for imported judgments that count for quality


def _copy_frame(sql: str, columns: list[str]) -> pd.DataFrame:
    buffer = io.BytesIO()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy,
    ):
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        return pd.DataFrame(columns=columns)
    return pd.read_csv(buffer, header=None, names=columns, keep_default_na=True, na_values=[""])


def _copy_judgments_and_scores(pid: int, after: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames from one COPY: a row per (current judgment, numeric score), or one row with
    no score for a judgment without numeric scores. One pass over the judgments instead of
    two, and half the rows to transfer when judgments carry one score each. With ``after``,
    only judgments whose id is above it (and only their items' lengths)."""
    j, i, m = Judgment._meta.db_table, Item._meta.db_table, Message._meta.db_table
    s, c = Score._meta.db_table, Criterion._meta.db_table
    after = int(after)
    newer = f" AND j.id > {after}" if after else ""
    item_filter = (
        f" AND i.id IN (SELECT j.item_id FROM {j} j WHERE j.id > {after})" if after else ""
    )
    # The CTE measures each item's responses once (not once per judgment) and keeps the
    # message texts out of the join with the judgments.
    sql = (
        f"WITH items AS MATERIALIZED (SELECT i.id, i.kind, i.is_gold::int AS is_gold, "
        f"length(ra.content) + coalesce((SELECT length(rb.content) FROM {m} rb "
        f"WHERE rb.id = i.response_b_id), 0) AS chars "
        f"FROM {i} i JOIN {m} ra ON ra.id = i.response_id WHERE i.project_id = {pid}"
        f"{item_filter}) "
        f"SELECT j.id, j.item_id, it.kind, j.rater_id, extract(epoch from j.created_at), "
        f"j.time_on_task_ms, j.left_is_a::int, j.preference, j.both_bad::int, j.verdict, "
        f"it.is_gold, (j.is_external AND NOT j.counts_for_quality)::int, it.chars, c.key, s.value "
        f"FROM {j} j JOIN items it ON it.id = j.item_id "
        f"LEFT JOIN ({s} s JOIN {c} c ON c.id = s.criterion_id) "
        f"ON s.judgment_id = j.id AND s.value IS NOT NULL WHERE j.is_current{newer}"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # JIT compilation costs more than it saves on this single pass (and the high cost
        # estimate of the length() calls triggers it).
        cursor.execute("SET LOCAL jit = off")
        rows = _copy_frame(sql, [*JUDGMENT_COLUMNS, "criterion_key", "value"])
    judgments = rows.loc[~rows["judgment_id"].duplicated(), JUDGMENT_COLUMNS]
    scores = rows.loc[rows["criterion_key"].notna(), SCORE_COLUMNS + SCORE_CONTEXT]
    return _typed(judgments.reset_index(drop=True)), _typed(scores.reset_index(drop=True))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The same column types whatever the rows (an empty or all-missing read included), so
    that cached and newly read frames concatenate without changing types."""
    for col in frame.columns:
        if col in INT_COLUMNS or col == "item_id":
            frame[col] = frame[col].astype(np.int64)
        elif col in ("kind", "criterion_key", "verdict"):
            frame[col] = frame[col].astype("str")  # what read_csv gives: Arrow-backed strings
        else:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


def cache_dir(pid: int) -> Path | None:
    """This database's and project's cache directory, or None when caching is off. The
    database's and the judgment table's object ids are part of the name, so that a recreated
    or restored database never meets an older cache."""
    root = getattr(settings, "QUALITY_CACHE_DIR", "")
    if not root:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), "
            "%s::regclass::oid",
            [Judgment._meta.db_table],
        )
        db_oid, table_oid = cursor.fetchone()
    return Path(root) / f"db{db_oid}-t{table_oid}" / f"project-{pid}"


def read_cache(path: Path) -> tuple[Fingerprint, pd.DataFrame, pd.DataFrame] | None:
    wait_for_write(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != CACHE_FORMAT:
            return None
        judgments = _typed(pd.read_feather(path / "judgments.arrow"))
        scores = _typed(pd.read_feather(path / "scores.arrow"))
        if list(judgments.columns) != JUDGMENT_COLUMNS:
            return None
        return Fingerprint(**meta["fingerprint"]), judgments, scores
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no cache, or one written by other code: read everything


def write_cache(path: Path, fp: Fingerprint, judgments: pd.DataFrame, scores: pd.DataFrame):
    """Write the three files under temporary names, then move them into place; the meta file
    last, so a reader sees either the old fingerprint or the new files."""
    path.mkdir(parents=True, exist_ok=True)
    tmp = f".tmp-{os.getpid()}"
    judgments.to_feather(path / f"judgments.arrow{tmp}", compression="uncompressed")
    scores.to_feather(path / f"scores.arrow{tmp}", compression="uncompressed")
    meta = {"format": CACHE_FORMAT, "fingerprint": fp.__dict__}
    (path / f"meta.json{tmp}").write_text(json.dumps(meta))
    (path / "meta.json").unlink(missing_ok=True)
    os.replace(path / f"judgments.arrow{tmp}", path / "judgments.arrow")
    os.replace(path / f"scores.arrow{tmp}", path / "scores.arrow")
    os.replace(path / f"meta.json{tmp}", path / "meta.json")


_writes: dict[Path, threading.Thread] = {}
_writes_lock = threading.Lock()


def _write_cache_soon(path: Path, fp: Fingerprint, judgments: pd.DataFrame, scores: pd.DataFrame):
    """Write the cache in a background thread (Arrow writes without holding the interpreter
    lock, so the run's statistics go on meanwhile); a later read of the same cache in this
    process waits for it. The frames are shallow copies: the run may replace their columns,
    never change the data in place."""
    wait_for_write(path)
    thread = threading.Thread(
        target=_write_quietly,
        args=(path, fp, judgments.copy(deep=False), scores.copy(deep=False)),
        name="quality-cache-write",
    )
    with _writes_lock:
        _writes[path] = thread
    thread.start()


def _write_quietly(path: Path, fp: Fingerprint, judgments: pd.DataFrame, scores: pd.DataFrame):
    try:
        write_cache(path, fp, judgments, scores)
    except (OSError, ValueError) as exc:  # no cache only makes the next run read everything
        logger.warning("could not write the quality cache in %s: %s", path, exc)


def wait_for_write(path: Path) -> None:
    with _writes_lock:
        thread = _writes.pop(path, None)
    if thread is not None:
        thread.join()


def _merge(
    cached: tuple[Fingerprint, pd.DataFrame, pd.DataFrame], pid: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cached frames with the judgments added since, the replaced ones dropped."""
    fp, judgments, scores = cached
    new_j, new_s = _copy_judgments_and_scores(pid, after=fp.last)
    if len(new_j) == 0:
        return judgments, scores
    replaced = pd.MultiIndex.from_frame(new_j[["item_id", "rater_id"]])
    keep = ~pd.MultiIndex.from_frame(judgments[["item_id", "rater_id"]]).isin(replaced)
    gone = judgments.loc[~keep, "judgment_id"]
    judgments = pd.concat([judgments[keep], new_j], ignore_index=True)
    scores = pd.concat([scores[~scores["judgment_id"].isin(gone)], new_s], ignore_index=True)
    return judgments, scores


def read(project: Project, use_cache: bool) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The frames, through the cache when it is usable; also says how they were read
    ("full" or "incremental"). The fingerprint and the rows are read in one snapshot
    (REPEATABLE READ when this is the outermost transaction), so judgments written meanwhile
    never make the check fail."""
    pid = int(project.pk)
    path = cache_dir(pid)
    if path is None:
        return *_copy_judgments_and_scores(pid), "full"
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        expected = Fingerprint.of_project(project)
        cached = read_cache(path) if use_cache else None
        how = "full"
        if cached is not None and cached[0].last <= expected.last:
            judgments, scores = _merge(cached, pid)
            if Fingerprint.of_frame(judgments) == expected:
                how = "incremental"
        if how == "full":
            judgments, scores = _copy_judgments_and_scores(pid)
    actual = Fingerprint.of_frame(judgments)
    if how == "full" or actual != cached[0]:
        _write_cache_soon(path, actual, judgments, scores)
    return judgments, scores, how
