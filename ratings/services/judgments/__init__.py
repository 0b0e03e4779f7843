"""Judgments: submit, revise (a new version, the old one kept), validate against the rubric.

Pairwise answers arrive in the terms the rater saw (left / right) and are stored in true
terms (response A / B) using the side recorded on the assignment, so every judgment maps back
to the real responses whatever side they were shown on.
"""

from ratings.services.judgments.answers import (
    DISPLAY_CHOICES,
    KB_PROBLEMS,
    NOT_READ,
    RUBRIC_DIGEST_SQL,
    SIDE_CHOICES,
    VERDICT_CHOICES,
    AlreadySubmitted,
    CleanAnswer,
    NotYourAssignment,
    answer_as_given,
    answer_text,
    clean_answer,
    current_rubric,
)
from ratings.services.judgments.submit import _check_time, judgment_revise, judgment_submit

__all__ = [
    "DISPLAY_CHOICES",
    "KB_PROBLEMS",
    "NOT_READ",
    "RUBRIC_DIGEST_SQL",
    "SIDE_CHOICES",
    "VERDICT_CHOICES",
    "AlreadySubmitted",
    "CleanAnswer",
    "NotYourAssignment",
    "_check_time",
    "answer_as_given",
    "answer_text",
    "clean_answer",
    "current_rubric",
    "judgment_revise",
    "judgment_submit",
]
