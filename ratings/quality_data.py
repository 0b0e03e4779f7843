"""Read a project's current judgments into column arrays for the quality computation.

On PostgreSQL the rows come through ``COPY (SELECT ...) TO STDOUT`` straight into pandas,
which is several times faster than building model instances; elsewhere through the ORM.
"""

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection, transaction

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
    "is_external",
    "chars",
]
SCORE_COLUMNS = ["judgment_id", "criterion_key", "value"]
# Copied from each score's judgment, so that the computations need no join.
SCORE_CONTEXT = ["item_id", "rater_id", "kind", "is_external"]


@dataclass
class QualityData:
    judgments: pd.DataFrame  # one row per current judgment
    scores: pd.DataFrame  # one row per numeric score of a current judgment (+ SCORE_CONTEXT)
    gold_answers: dict[int, dict]  # item id -> gold answer
    criteria: dict[str, Criterion]  # key -> current (or latest) criterion


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


def _copy_judgments_and_scores(pid: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames from one COPY: a row per (current judgment, numeric score), or one row with
    no score for a judgment without numeric scores. One pass over the judgments instead of
    two, and half the rows to transfer when judgments carry one score each."""
    j, i, m = Judgment._meta.db_table, Item._meta.db_table, Message._meta.db_table
    s, c = Score._meta.db_table, Criterion._meta.db_table
    # The CTE measures each item's responses once (not once per judgment) and keeps the
    # message texts out of the join with the judgments.
    sql = (
        f"WITH items AS MATERIALIZED (SELECT i.id, i.kind, i.is_gold::int AS is_gold, "
        f"length(ra.content) + coalesce((SELECT length(rb.content) FROM {m} rb "
        f"WHERE rb.id = i.response_b_id), 0) AS chars "
        f"FROM {i} i JOIN {m} ra ON ra.id = i.response_id WHERE i.project_id = {pid}) "
        f"SELECT j.id, j.item_id, it.kind, j.rater_id, extract(epoch from j.created_at), "
        f"j.time_on_task_ms, j.left_is_a::int, j.preference, j.both_bad::int, j.verdict, "
        f"it.is_gold, j.is_external::int, it.chars, c.key, s.value "
        f"FROM {j} j JOIN items it ON it.id = j.item_id "
        f"LEFT JOIN ({s} s JOIN {c} c ON c.id = s.criterion_id) "
        f"ON s.judgment_id = j.id AND s.value IS NOT NULL WHERE j.is_current"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # JIT compilation costs more than it saves on this single pass (and the high cost
        # estimate of the length() calls triggers it).
        cursor.execute("SET LOCAL jit = off")
        rows = _copy_frame(sql, [*JUDGMENT_COLUMNS, "criterion_key", "value"])
    judgments = rows.loc[~rows["judgment_id"].duplicated(), JUDGMENT_COLUMNS]
    scores = rows.loc[rows["criterion_key"].notna(), SCORE_COLUMNS + SCORE_CONTEXT]
    return judgments.reset_index(drop=True), scores.reset_index(drop=True)


def load(project: Project) -> QualityData:
    """Read the project's current judgments (internal and external) and their numeric
    scores, the gold answers and the criteria. Read-only; on PostgreSQL one COPY in a short
    read transaction."""
    pid = int(project.pk)
    if connection.vendor == "postgresql":
        judgments, scores = _copy_judgments_and_scores(pid)
    else:
        from django.db.models.functions import Length

        rows = (
            Judgment.objects.filter(item__project=project, is_current=True)
            .annotate(ca=Length("item__response__content"), cb=Length("item__response_b__content"))
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
                "is_external",
                "ca",
                "cb",
            )
        )
        data = [(*r[:4], r[4].timestamp(), *r[5:12], (r[12] or 0) + (r[13] or 0)) for r in rows]
        judgments = pd.DataFrame(data, columns=JUDGMENT_COLUMNS)
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
    )


def preference_label(preference: np.ndarray) -> np.ndarray:
    """-1 (A better), 0 (tie), 1 (B better) from the 5-point preference."""
    return np.sign(np.nan_to_num(preference)).astype(int)
