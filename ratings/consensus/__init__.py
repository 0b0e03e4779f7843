"""Label aggregation for crowd ratings: the consensus rule of each task kind, majority vote,
mean strength, Dawid–Skene.

``kb_consensus`` (KB verdicts; ``cannot_judge`` abstains) and ``pairwise_consensus`` (pairwise
preferences) are the one rule of their kind: the KB report, gold promotion, the quality run
and the exporters all call them. Pure code (numpy and the standard library, no Django).
Items, raters and labels can be any hashable values (ints, strings, ...). See
``docs/aggregation.md`` for what each method does and when to choose which.
"""

from ratings.consensus.dawid_skene import DawidSkeneResult, dawid_skene
from ratings.consensus.kb import KBConsensus, kb_consensus
from ratings.consensus.pairwise import PairConsensus, pairwise_consensus
from ratings.consensus.strength import StrengthResult, mean_strength
from ratings.consensus.votes import (
    VoteResult,
    accuracy_to_weight,
    majority_vote,
    reliability_weighted_vote,
)

__all__ = [
    "DawidSkeneResult",
    "KBConsensus",
    "PairConsensus",
    "StrengthResult",
    "VoteResult",
    "accuracy_to_weight",
    "dawid_skene",
    "kb_consensus",
    "majority_vote",
    "mean_strength",
    "pairwise_consensus",
    "reliability_weighted_vote",
]
