"""Label aggregation for crowd ratings: majority vote, mean strength, Dawid–Skene.

Pure numerical code (numpy only, no Django). Items, raters and labels can be any hashable
values (ints, strings, ...). See ``docs/aggregation.md`` for what each method does and when
to choose which.
"""

from ratings.consensus.dawid_skene import DawidSkeneResult, dawid_skene
from ratings.consensus.strength import StrengthResult, mean_strength
from ratings.consensus.votes import (
    VoteResult,
    accuracy_to_weight,
    majority_vote,
    reliability_weighted_vote,
)

__all__ = [
    "DawidSkeneResult",
    "StrengthResult",
    "VoteResult",
    "accuracy_to_weight",
    "dawid_skene",
    "majority_vote",
    "mean_strength",
    "reliability_weighted_vote",
]
