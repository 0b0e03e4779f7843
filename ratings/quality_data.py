"""Read a project's current judgments into column arrays for the quality computation.

The plain read is a QuerySet of the current judgments and one of their scores. Where the
``quality_copy`` acceleration is on (PostgreSQL) the same frames come from one COPY, and
only the judgments added since the last run when the Arrow cache can be used
(ratings/accel/quality_read.py).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db.models import BooleanField, ExpressionWrapper, Q

from config import accel
from conversations.models import Project
from ratings.accel import quality_read
from ratings.models import Criterion, Item, Judgment, Score
from ratings.quality_columns import (  # the frames' columns, also for the quality services
    INT_COLUMNS,
    JUDGMENT_COLUMNS,
    SCORE_COLUMNS,
    SCORE_CONTEXT,
    Fingerprint,
)

__all__ = [
    "INT_COLUMNS",
    "JUDGMENT_COLUMNS",
    "SCORE_COLUMNS",
    "SCORE_CONTEXT",
    "Fingerprint",
    "QualityData",
    "load",
    "preference_label",
]


@dataclass
class QualityData:
    judgments: pd.DataFrame  # one row per current judgment
    scores: pd.DataFrame  # one row per numeric score of a current judgment (+ SCORE_CONTEXT)
    gold_answers: dict[int, dict]  # item id -> gold answer
    criteria: dict[str, Criterion]  # key -> current (or latest) criterion
    read: str = "full"  # "incremental" when only the judgments added since were read


def load(project: Project, *, use_cache: bool = True) -> QualityData:
    """Read the project's current judgments (internal and external) and their numeric
    scores, the gold answers and the criteria. Read-only for the database; on PostgreSQL one
    COPY in a short read transaction, of only the judgments added since the last read when
    the cache (see the module docstring) can be used. ``use_cache=False`` reads everything
    (and refreshes the cache)."""
    how = "full"
    if accel.enabled("quality_copy"):
        judgments, scores, how = quality_read.read(project, use_cache)
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
