"""Read a project's current judgments into column arrays for the quality computation.

On PostgreSQL the rows come through ``COPY (SELECT ...) TO STDOUT`` straight into pandas,
which is several times faster than building model instances; elsewhere through the ORM.
"""

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection

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


@dataclass
class QualityData:
    judgments: pd.DataFrame  # one row per current judgment
    scores: pd.DataFrame  # one row per numeric score of a current judgment
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


def load(project: Project) -> QualityData:
    pid = int(project.pk)
    j, i, m = Judgment._meta.db_table, Item._meta.db_table, Message._meta.db_table
    s, c = Score._meta.db_table, Criterion._meta.db_table
    if connection.vendor == "postgresql":
        judgments = _copy_frame(
            f"SELECT j.id, j.item_id, i.kind, j.rater_id, extract(epoch from j.created_at), "
            f"j.time_on_task_ms, j.left_is_a::int, j.preference, j.both_bad::int, j.verdict, "
            f"i.is_gold::int, j.is_external::int, length(ra.content) + coalesce(length(rb.content), 0) "
            f"FROM {j} j JOIN {i} i ON i.id = j.item_id JOIN {m} ra ON ra.id = i.response_id "
            f"LEFT JOIN {m} rb ON rb.id = i.response_b_id "
            f"WHERE i.project_id = {pid} AND j.is_current",
            JUDGMENT_COLUMNS,
        )
        scores = _copy_frame(
            f"SELECT s.judgment_id, c.key, s.value FROM {s} s JOIN {c} c ON c.id = s.criterion_id "
            f"JOIN {j} j ON j.id = s.judgment_id JOIN {i} i ON i.id = j.item_id "
            f"WHERE i.project_id = {pid} AND j.is_current AND s.value IS NOT NULL",
            SCORE_COLUMNS,
        )
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
        )
    for col in ("left_is_a", "preference", "time_ms"):
        judgments[col] = pd.to_numeric(judgments[col], errors="coerce").astype(float)
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
