"""Rubrics, work items, assignments, judgments and quality records.

The overlap invariant lives in the database (ratings.models.work); judgments are never
deleted (ratings.models.judgments). Every model is importable from ``ratings.models``.
"""

from ratings.models.imports import JudgmentImportJob
from ratings.models.judgments import Judgment, JudgmentQuerySet, Preference, Score, Verdict
from ratings.models.quality import (
    AgreementSnapshot,
    DriftCursor,
    DriftFlag,
    FlagMethod,
    FlagState,
    QualityRun,
    RaterProfile,
    RaterQuality,
    RunState,
)
from ratings.models.rubrics import Criterion, Rubric, Scale, TaskKind
from ratings.models.work import (
    Assignment,
    AssignmentQuerySet,
    AssignmentState,
    Item,
    ItemQuerySet,
)

__all__ = [
    "AgreementSnapshot",
    "Assignment",
    "AssignmentQuerySet",
    "AssignmentState",
    "Criterion",
    "DriftCursor",
    "DriftFlag",
    "FlagMethod",
    "FlagState",
    "Item",
    "ItemQuerySet",
    "Judgment",
    "JudgmentImportJob",
    "JudgmentQuerySet",
    "Preference",
    "QualityRun",
    "RaterProfile",
    "RaterQuality",
    "Rubric",
    "RunState",
    "Scale",
    "Score",
    "TaskKind",
    "Verdict",
]
