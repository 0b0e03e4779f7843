"""The fast export's first phase: the pairs, then their votes a chunk of pairs at a time, the
majority and the rules as array arithmetic, and the manifest's rater and version sets.

The results equal the general path's (``Aggregator("majority").decide`` and the rules in
``exports/pipeline.py``), pair for pair: the tests run both paths on the same projects.
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import psycopg
from django.db import connection

from conversations.models import Project
from exports.canonical import ExportFilters
from ratings.models import DriftFlag, FlagState, Item, Judgment, Rubric, TaskKind

NO_PREFERENCE = 7  # stands for NULL among the preferences (-2..2, stored + 2)
NO_RUBRIC = -1
CHUNK = 10000  # pairs a query: about 30,000 votes, a few MB as arrays


def pairs(project: Project, f: ExportFilters) -> tuple[np.ndarray, np.ndarray]:
    """(ids, creation times in microseconds) of the project's pairs the filters keep, by id."""
    gold = " AND NOT is_gold" if f.exclude_gold else ""
    # as byte strings of 8-byte integers: a list of Python ints would cost 40 bytes a pair
    sql = f"""
        SELECT string_agg(int8send(id), ''::bytea),
               string_agg(int8send((date_part('epoch', created_at) * 1000000)::int8), ''::bytea)
        FROM {Item._meta.db_table}
        WHERE project_id = %s AND kind = %s{gold}
    """
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [project.pk, TaskKind.PAIRWISE.value], binary=True)
        ids, stamps = (int64s(x) for x in cursor.fetchone())
    order = np.argsort(ids, kind="stable")
    return ids[order], stamps[order]


def int64s(data: bytes | None) -> np.ndarray:
    """Big-endian 8-byte integers (PostgreSQL's int8send) as an array."""
    return np.frombuffer(data or b"", dtype=">i8").astype(np.int64)


def _judgment_filters(project: Project, f: ExportFilters) -> tuple[str, list]:
    """SQL conditions on ``j`` (judgments) for the filters that apply to votes."""
    sql, params = "", []
    if not f.include_external:
        sql += " AND NOT j.is_external"
    if f.date_from:
        sql += " AND j.created_at >= %s"
        params.append(f.date_from)
    if f.date_to:
        sql += " AND j.created_at < %s"
        params.append(f.date_to)
    if f.exclude_flagged_raters:
        sql += (
            f" AND j.rater_id NOT IN (SELECT rater_id FROM {DriftFlag._meta.db_table}"
            " WHERE project_id = %s AND state = %s)"
        )
        params += [project.pk, FlagState.OPEN.value]
    return sql, params


@dataclass
class Chunk:
    """The pairs of one chunk that become rows, in id order."""

    kept: np.ndarray  # item ids
    b_won: np.ndarray  # response B is the chosen one
    records: int  # pairs with at least one vote after the filters
    dropped: Counter
    raters: set
    rubrics: set  # rubric ids
    guideline_versions: set


@dataclass
class Totals:
    records_read: int = 0
    dropped: Counter = field(default_factory=Counter)
    raters: set = field(default_factory=set)
    rubrics: set = field(default_factory=set)
    guideline_versions: set = field(default_factory=set)

    def add(self, chunk: Chunk) -> None:
        self.records_read += chunk.records
        self.dropped.update(chunk.dropped)
        self.raters |= chunk.raters
        self.rubrics |= chunk.rubrics
        self.guideline_versions |= chunk.guideline_versions

    def rubric_versions(self) -> set:
        """The versions of the rubrics the kept pairs' votes were made under."""
        return set(Rubric.objects.filter(id__in=self.rubrics).values_list("version", flat=True))


def chunks(project: Project, options, ids: np.ndarray):
    """``Chunk`` after ``Chunk`` for the pairs ``ids`` (ascending), CHUNK pairs a query."""
    size = CHUNK
    where, params = _judgment_filters(project, options.filters)
    # rater, preference and "both bad" travel packed in one number (rater ids are 32-bit
    # integers, preferences -2..2): three arrays are read instead of five
    sql = f"""
        SELECT array_agg(j.item_id),
               array_agg((j.rater_id::int8 << 4)
                         | (coalesce(j.preference + 2, {NO_PREFERENCE}) << 1) | j.both_bad::int),
               array_agg(coalesce(j.rubric_id, {NO_RUBRIC})), array_agg(j.guidelines_version)
        FROM {Judgment._meta.db_table} j
        WHERE j.item_id BETWEEN %s AND %s AND j.is_current{where}
    """
    connection.ensure_connection()
    # binary results: arrays arrive as numbers, not as text to parse
    with psycopg.Cursor(connection.connection) as cursor:
        for start in range(0, len(ids), size):
            chunk_ids = ids[start : start + size]
            cursor.execute(sql, [int(chunk_ids[0]), int(chunk_ids[-1]), *params], binary=True)
            item, packed, rubric, guidelines = (
                np.array(col or [], dtype=np.int64) for col in cursor.fetchone()
            )
            rater, preference, both_bad = packed >> 4, (packed >> 1) & 7, packed & 1
            preference = np.where(preference == NO_PREFERENCE, NO_PREFERENCE, preference - 2)
            yield decide(chunk_ids, item, rater, preference, both_bad, rubric, guidelines, options)


def decide(chunk_ids, item, rater, preference, both_bad, rubric, guidelines, options) -> Chunk:
    """Majority vote and the pipeline's rules, in the pipeline's order (min_raters,
    min_agreement, both_bad, tie), for the pairs of ``chunk_ids`` with a vote."""
    # votes of pairs outside this chunk's ids (other projects, gold pairs left out) go
    at = np.minimum(np.searchsorted(chunk_ids, item), len(chunk_ids) - 1)
    mine = chunk_ids[at] == item
    at, rater, preference, both_bad = at[mine], rater[mine], preference[mine], both_bad[mine]
    rubric, guidelines = rubric[mine], guidelines[mine]
    size = len(chunk_ids)
    voted = np.bincount(at, minlength=size) > 0
    has = preference != NO_PREFERENCE
    n = np.bincount(at, weights=has, minlength=size).astype(np.int64)
    a = np.bincount(at, weights=has & (preference < 0), minlength=size).astype(np.int64)
    b = np.bincount(at, weights=has & (preference > 0), minlength=size).astype(np.int64)
    t = np.bincount(at, weights=has & (preference == 0), minlength=size).astype(np.int64)
    bad = np.bincount(at, weights=has & (both_bad != 0), minlength=size).astype(np.int64)
    a_wins = (a > b) & (a >= t)
    b_wins = (b > a) & (b >= t)
    tie = ~(a_wins | b_wins)
    dropped: Counter = Counter()
    rest = voted.copy()  # a pair without a vote is not a record at all

    def drop(rule: str, mask: np.ndarray) -> None:
        nonlocal rest
        hit = rest & mask
        if hit.any():
            dropped[rule] = int(hit.sum())
        rest &= ~hit

    # no vote with a preference: the aggregator's empty decision has 0 votes
    drop("fewer_raters_than_min_raters", n < options.min_raters)
    if options.min_agreement > 0:
        agreeing = np.where(a_wins, a, np.where(b_wins, b, t))
        below = np.zeros(size, dtype=bool)
        # round(agreeing / votes, 6) exactly as the aggregator computes it, once per pair shape
        for x, m in {(int(x), int(m)) for x, m in zip(agreeing[rest], n[rest], strict=True)}:
            if (round(x / m, 6) if m else 0.0) < options.min_agreement:
                below |= (agreeing == x) & (n == m)
        drop("agreement_below_min_agreement", below)
    if options.both_bad == "drop":
        drop("both_bad", bad * 2 > n)
    drop("tie", tie)
    of_kept = rest[at]  # every vote of a kept pair, with a preference or not
    return Chunk(
        kept=chunk_ids[rest],
        b_won=b_wins[rest],
        records=int(voted.sum()),
        dropped=dropped,
        raters=set(np.unique(rater[of_kept]).tolist()),
        rubrics=set(np.unique(rubric[of_kept]).tolist()) - {NO_RUBRIC},
        guideline_versions=set(np.unique(guidelines[of_kept]).tolist()),
    )
