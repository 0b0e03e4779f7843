"""The columns of the frames a quality run reads (ratings.quality_data), and the fingerprint
of a project's current judgments: shared by the plain read and the COPY read with its cache
(ratings/accel/quality_read.py), which both build these frames."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db.models import Count, Max, Sum

from conversations.models import Project
from ratings.models import Judgment

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
