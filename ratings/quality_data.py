"""Read a project's current judgments into column arrays for the quality computation.

On PostgreSQL the rows come through ``COPY (SELECT ...) TO STDOUT`` straight into pandas,
which is several times faster than building model instances; elsewhere through the ORM.

Incremental reading (PostgreSQL, ``QUALITY_CACHE_DIR`` set): after a full read the frames are
kept on disk (Arrow IPC files, one directory per database and project). The next run reads
only the judgments added since (ids above the cached ones) and drops the cached judgment of
any (item, rater) the new ones replace: a judgment stops being current only when a newer
version of the same rater's judgment on the same item is written in the same transaction
(edits, imports). The merged frames are then checked against the database's fingerprint of
the current judgments (count, sum and maximum of their ids); any difference (a transaction
that committed a lower id late, a restored database, a code change) falls back to a full
read. Gold flags are re-read every time, since a lead can promote an item at any moment.
"""

import io
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Max, Q, Sum

from config import accel
from conversations.models import Message, Project
from ratings.models import Criterion, Item, Judgment, Score

JUDGMENT_COLUMNS = [
    "judgment_id",
    "item_id",
    "kind",
    "rater_id",
    "created_at",
    "time_ms",
    "left_is_a",
    "preference",
    "both_bad",
    "verdict",
    "is_gold",
    # 1 for an imported judgment that does not count for quality (imported without
    # --count-for-quality); internal and counted imported judgments are 0
    "is_external",
    "chars",
]
SCORE_COLUMNS = ["judgment_id", "criterion_key", "value"]
# Copied from each score's judgment, so that the computations need no join.
SCORE_CONTEXT = ["item_id", "rater_id", "kind", "is_external"]


logger = logging.getLogger(__name__)

# Bump when the cached columns or their meaning change: older caches are then ignored.
CACHE_FORMAT = 2  # 2: is_external is 0 for imported judgments that count for quality
INT_COLUMNS = ["judgment_id", "item_id", "rater_id", "is_gold", "is_external", "chars", "both_bad"]


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a project's set of current judgments: their count, the sum and the
    maximum of their ids. New judgments raise the count and the maximum; an edit replaces an
    id by a higher one, which changes the sum."""

    n: int
    id_sum: int
    last: int

    @classmethod
    def of_project(cls, project: Project) -> "Fingerprint":
        agg = Judgment.objects.filter(item__project=project, is_current=True).aggregate(
            n=Count("id"), s=Sum("id"), last=Max("id")
        )
        return cls(n=agg["n"], id_sum=int(agg["s"] or 0), last=int(agg["last"] or 0))

    @classmethod
    def of_frame(cls, judgments: pd.DataFrame) -> "Fingerprint":
        ids = judgments["judgment_id"].to_numpy(dtype=np.int64)
        return cls(n=len(ids), id_sum=int(ids.sum()), last=int(ids.max(initial=0)))


@dataclass
class QualityData:
    judgments: pd.DataFrame  # one row per current judgment
    scores: pd.DataFrame  # one row per numeric score of a current judgment (+ SCORE_CONTEXT)
    gold_answers: dict[int, dict]  # item id -> gold answer
    criteria: dict[str, Criterion]  # key -> current (or latest) criterion
    read: str = "full"  # "incremental" when only the judgments added since were read


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


def _cache_dir(pid: int) -> Path | None:
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


def _read_cache(path: Path) -> tuple[Fingerprint, pd.DataFrame, pd.DataFrame] | None:
    _wait_for_write(path)
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


def _write_cache(path: Path, fp: Fingerprint, judgments: pd.DataFrame, scores: pd.DataFrame):
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
    _wait_for_write(path)
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
        _write_cache(path, fp, judgments, scores)
    except (OSError, ValueError) as exc:  # no cache only makes the next run read everything
        logger.warning("could not write the quality cache in %s: %s", path, exc)


def _wait_for_write(path: Path) -> None:
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


def _copy_incremental(project: Project, use_cache: bool) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The frames, through the cache when it is usable; also says how they were read
    ("full" or "incremental"). The fingerprint and the rows are read in one snapshot
    (REPEATABLE READ when this is the outermost transaction), so judgments written meanwhile
    never make the check fail."""
    pid = int(project.pk)
    path = _cache_dir(pid)
    if path is None:
        return *_copy_judgments_and_scores(pid), "full"
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        expected = Fingerprint.of_project(project)
        cached = _read_cache(path) if use_cache else None
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


def load(project: Project, *, use_cache: bool = True) -> QualityData:
    """Read the project's current judgments (internal and external) and their numeric
    scores, the gold answers and the criteria. Read-only for the database; on PostgreSQL one
    COPY in a short read transaction, of only the judgments added since the last read when
    the cache (see the module docstring) can be used. ``use_cache=False`` reads everything
    (and refreshes the cache)."""
    how = "full"
    if accel.enabled("quality_copy"):
        judgments, scores, how = _copy_incremental(project, use_cache)
    else:
        from django.db.models.functions import Length

        rows = (
            Judgment.objects.filter(item__project=project, is_current=True)
            .annotate(
                ca=Length("item__response__content"),
                cb=Length("item__response_b__content"),
                not_counted=ExpressionWrapper(
                    Q(is_external=True, counts_for_quality=False), output_field=BooleanField()
                ),
            )
            .values_list(
                "id",
                "item_id",
                "item__kind",
                "rater_id",
                "created_at",
                "time_on_task_ms",
                "left_is_a",
                "preference",
                "both_bad",
                "verdict",
                "item__is_gold",
                "not_counted",
                "ca",
                "cb",
            )
        )
        data = [(*r[:4], r[4].timestamp(), *r[5:12], (r[12] or 0) + (r[13] or 0)) for r in rows]
        # the same dtypes as the COPY read (the ORM gives bools where COPY gives 0/1)
        judgments = pd.DataFrame(data, columns=JUDGMENT_COLUMNS).astype(
            dict.fromkeys(INT_COLUMNS, np.int64)
        )
        scores = pd.DataFrame(
            list(
                Score.objects.filter(
                    judgment__item__project=project, judgment__is_current=True, value__isnull=False
                ).values_list("judgment_id", "criterion__key", "value")
            ),
            columns=SCORE_COLUMNS,
        ).merge(judgments[["judgment_id", *SCORE_CONTEXT]], on="judgment_id")
    for col in ("left_is_a", "preference", "time_ms"):
        judgments[col] = pd.to_numeric(judgments[col], errors="coerce").astype(float)
    scores["value"] = scores["value"].astype(float)
    judgments["verdict"] = judgments["verdict"].astype(object).fillna("").astype(str)
    gold = dict(Item.objects.filter(project=project, is_gold=True).values_list("id", "gold_answer"))
    judgments["is_gold"] = judgments["item_id"].isin(list(gold)).astype(np.int64)
    criteria: dict[str, Criterion] = {}
    for crit in Criterion.objects.filter(rubric__project=project).order_by(
        "rubric__version", "position"
    ):
        criteria[crit.key] = crit  # the latest version of each key wins
    return QualityData(
        judgments=judgments,
        scores=scores,
        gold_answers={k: v or {} for k, v in gold.items()},
        criteria=criteria,
        read=how,
    )


def preference_label(preference: np.ndarray) -> np.ndarray:
    """-1 (A better), 0 (tie), 1 (B better) from the 5-point preference."""
    return np.sign(np.nan_to_num(preference)).astype(int)
