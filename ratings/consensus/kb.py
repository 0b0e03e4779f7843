"""The one consensus rule for KB verification verdicts.

Used by the KB-correctness report, gold promotion, the quality run and the exporters, so they
never disagree about what an answer's SMEs decided.

``cannot_judge`` abstains: it is not a vote for any verdict. It neither supports nor opposes
the others, it is not promoted to gold, and a rater who gives it neither agrees nor disagrees
with anyone. The verdict is the most common of the other votes (correct, incorrect,
incomplete); a tie at the top is ``disputed``; when every vote abstains the answer is
``cannot_judge`` (judged, but no verdict); with no vote at all it is None (not judged yet).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

ABSTAIN = "cannot_judge"
DISPUTED = "disputed"
# the verdicts that are votes, in the order the quality run codes them
VERDICTS = ("correct", "incomplete", "incorrect")


def is_vote(verdict: str | None) -> bool:
    """Whether a judgment's verdict counts as a vote (not empty, not an abstention)."""
    return bool(verdict) and verdict != ABSTAIN


@dataclass(frozen=True)
class KBConsensus:
    """The outcome for one answer: ``verdict`` is one of :data:`VERDICTS`, ``"disputed"``,
    ``"cannot_judge"`` or None (see the module docstring); ``votes`` counts the judgments that
    are votes, ``support`` those for the verdict, ``abstentions`` the ``cannot_judge`` ones."""

    verdict: str | None
    votes: int
    support: int
    abstentions: int

    @property
    def is_decisive(self) -> bool:
        """A verdict (correct, incorrect or incomplete) won: not disputed, not abstained."""
        return self.verdict in VERDICTS

    @property
    def agreement(self) -> float:
        """The share of the votes that support the verdict (0 without votes)."""
        return self.support / self.votes if self.votes else 0.0


def kb_consensus(verdicts: Iterable[str | None]) -> KBConsensus:
    """The consensus of one answer's current verdicts (empty ones are ignored)."""
    given = [v for v in verdicts if v]
    votes = Counter(v for v in given if v != ABSTAIN)
    abstentions = len(given) - sum(votes.values())
    if not given:
        return KBConsensus(None, 0, 0, 0)
    if not votes:
        return KBConsensus(ABSTAIN, 0, 0, abstentions)
    (top, n), *rest = votes.most_common()
    verdict = DISPUTED if rest and rest[0][1] == n else top
    return KBConsensus(verdict, sum(votes.values()), n, abstentions)
