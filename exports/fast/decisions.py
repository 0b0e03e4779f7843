"""The fast export's first phase: every pair's vote counts in one query, the majority and the
rules as array arithmetic, and the manifest's rater and version sets of the kept pairs.

The results equal the general path's (``Aggregator("majority").decide`` and the rules in
``exports/pipeline.py``), pair for pair: the tests run both paths on the same projects.
"""

from dataclasses import dataclass

import numpy as np
from django.db import connection

from conversations.models import Project
from exports.canonical import ExportFilters
from ratings.models import DriftFlag, FlagState, Item, Judgment, Rubric, TaskKind


@dataclass
class Decisions:
    """The pairs that become rows, in item id order, and what the manifest counts."""

    kept: np.ndarray  # item ids (int64), ascending
    b_won: np.ndarray  # bool: response B is the chosen one
    stamps: np.ndarray  # the kept items' created_at in microseconds (cache check)
    records_read: int  # pairs with at least one vote after the filters
    dropped: dict[str, int]


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


def _counts(project: Project, f: ExportFilters) -> list:
    """Per pair with a vote, as arrays in id order: id, created_at (us), votes with a
    preference, for A, for B, ties, and "both bad" among the votes with a preference."""
    where, params = _judgment_filters(project, f)
    gold = " AND NOT i.is_gold" if f.exclude_gold else ""
    sql = f"""
        SELECT array_agg(id ORDER BY id), array_agg(stamp ORDER BY id), array_agg(n ORDER BY id),
               array_agg(a ORDER BY id), array_agg(b ORDER BY id), array_agg(t ORDER BY id),
               array_agg(bad ORDER BY id)
        FROM (
            SELECT i.id, (extract(epoch FROM i.created_at) * 1000000)::int8 AS stamp,
                   count(j.preference) AS n,
                   count(*) FILTER (WHERE j.preference < 0) AS a,
                   count(*) FILTER (WHERE j.preference > 0) AS b,
                   count(*) FILTER (WHERE j.preference = 0) AS t,
                   count(*) FILTER (WHERE j.preference IS NOT NULL AND j.both_bad) AS bad
            FROM {Item._meta.db_table} i
            JOIN {Judgment._meta.db_table} j ON j.item_id = i.id AND j.is_current
            WHERE i.project_id = %s AND i.kind = %s{gold}{where}
            GROUP BY i.id
        ) g
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk, TaskKind.PAIRWISE.value, *params])
        row = cursor.fetchone()
    return [np.array(col or [], dtype=np.int64) for col in row]


def decide(project: Project, options) -> Decisions:
    """Majority vote and the pipeline's rules, in the pipeline's order (min_raters,
    min_agreement, both_bad, tie), for every pair with a vote."""
    ids, stamps, n, a, b, t, bad = _counts(project, options.filters)
    a_wins = (a > b) & (a >= t)
    b_wins = (b > a) & (b >= t)
    tie = ~(a_wins | b_wins)
    dropped: dict[str, int] = {}
    rest = np.ones(len(ids), dtype=bool)

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
        below = np.zeros(len(ids), dtype=bool)
        # round(agreeing / votes, 6) exactly as the aggregator computes it, once per pair shape
        for x, m in {(int(x), int(m)) for x, m in zip(agreeing, n, strict=True)}:
            share = round(x / m, 6) if m else 0.0
            if share < options.min_agreement:
                below |= (agreeing == x) & (n == m)
        drop("agreement_below_min_agreement", below)
    if options.both_bad == "drop":
        drop("both_bad", bad * 2 > n)
    drop("tie", tie)
    return Decisions(
        kept=ids[rest],
        b_won=b_wins[rest],
        stamps=stamps[rest],
        records_read=len(ids),
        dropped=dict(sorted(dropped.items())),
    )


def manifest_sets(project: Project, f: ExportFilters, kept: np.ndarray) -> tuple[set, set, int]:
    """(rubric versions, guidelines versions, number of raters) of every vote of the kept
    pairs after the filters, as the general path collects them from its records."""
    if not len(kept):
        return set(), set(), 0
    where, params = _judgment_filters(project, f)
    sql = f"""
        SELECT array_agg(DISTINCT r.version) FILTER (WHERE r.version IS NOT NULL),
               array_agg(DISTINCT j.guidelines_version), count(DISTINCT j.rater_id)
        FROM {Judgment._meta.db_table} j
        LEFT JOIN {Rubric._meta.db_table} r ON r.id = j.rubric_id
        WHERE j.is_current AND j.item_id = ANY(%s::int8[]){where}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [kept.tolist(), *params])
        rubric_versions, guideline_versions, raters = cursor.fetchone()
    return set(rubric_versions or ()), set(guideline_versions or ()), int(raters)
