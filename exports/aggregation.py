"""How raters' votes on a pair become one label. The consumer chooses; the manifest records it.

- ``majority``: the side with more votes than the other side and at least as many as "tie";
  otherwise a tie. Confidence = share of votes for the winner.
- ``mean``: the sign of the mean preference (-2..2); a tie when the mean is within
  ``tie_margin`` of 0. Confidence = share of votes on the winning side.
- ``dawid-skene``: per-rater confusion matrices estimated by EM over the whole project
  (``ratings.consensus.dawid_skene``); the label is the posterior mode, confidence its
  posterior probability.
- ``weighted``: majority with each rater's vote weighted by their agreement with the
  consensus in the latest quality run (raters without one weigh 1).
The margin (strength) is the mean absolute preference of the votes for the winner, 0..2.
"""

from dataclasses import dataclass

from exports.canonical import Vote
from ratings.consensus import dawid_skene, pairwise_consensus

METHODS = ("majority", "mean", "dawid-skene", "weighted")


@dataclass(frozen=True)
class Decision:
    winner: str  # "a", "b" or "tie"
    confidence: float
    margin: float
    n_votes: int
    agreement: float  # share of votes agreeing with the winner
    both_bad: bool  # most voters said both are bad


_SIDE = {"a": -1, "b": 1, "tie": 0}


def _sign(preference: int) -> int:
    return (preference > 0) - (preference < 0)


# Plain arithmetic on a pair's few votes: numpy's per-call overhead is larger than the work.
# The preferences are small integers, so sum / len is exactly what a mean in floats gives.
def _finish(votes: list[Vote], winner: str, confidence: float) -> Decision:
    side = _SIDE[winner]
    agreeing = [abs(v.preference) for v in votes if _sign(v.preference) == side]
    margin = sum(agreeing) / len(agreeing) if agreeing and side else 0.0
    both_bad = sum(v.both_bad for v in votes) * 2 > len(votes)
    return Decision(
        winner,
        round(confidence, 6),
        round(margin, 6),
        len(votes),
        round(len(agreeing) / len(votes), 6),
        both_bad,
    )


def decide_majority(votes: list[Vote], weights: dict[int, float] | None = None) -> Decision:
    """The winner of ``ratings.consensus.pairwise_consensus`` (the rule gold promotion uses)."""
    c = pairwise_consensus(
        (v.preference for v in votes),
        (weights.get(v.rater_id, 1.0) for v in votes) if weights else None,
    )
    total = c.total or 1.0
    if c.winner == "a":
        return _finish(votes, "a", c.a / total)
    if c.winner == "b":
        return _finish(votes, "b", c.b / total)
    return _finish(votes, "tie", c.tie / total if c.tie else 0.5)


def decide_mean(votes: list[Vote], tie_margin: float = 0.0) -> Decision:
    mean = sum(v.preference for v in votes) / len(votes)
    winner = "tie" if abs(mean) <= tie_margin else ("a" if mean < 0 else "b")
    side = _SIDE[winner]
    return _finish(votes, winner, sum(_sign(v.preference) == side for v in votes) / len(votes))


class Aggregator:
    """Decides pairs with the chosen method; Dawid-Skene and weighted need a project-wide
    prepass (``prepare``) before records stream through ``decide``."""

    def __init__(self, method: str = "majority", tie_margin: float = 0.0):
        if method not in METHODS:
            raise ValueError(
                f"unknown aggregation {method!r}; expected one of {', '.join(METHODS)}"
            )
        self.method = method
        self.tie_margin = tie_margin
        self.posterior: dict[int, tuple[str, float]] = {}
        self.weights: dict[int, float] = {}

    def prepare(
        self,
        *,
        items: list[int],
        raters: list[int],
        labels: list[int],
        weights: dict[int, float] | None = None,
    ) -> dict:
        """Run the project-wide step; return what the manifest should record about it."""
        if self.method == "weighted":
            self.weights = weights or {}
            return {"rater_weights": len(self.weights)}
        if self.method != "dawid-skene" or not items:
            return {}
        result = dawid_skene(list(zip(items, raters, labels, strict=True)), classes=[-1, 0, 1])
        names = {-1: "a", 0: "tie", 1: "b"}
        for item, label in result.labels_dict().items():
            self.posterior[item] = (names[label], max(result.posterior_of(item).values()))
        return {"iterations": result.iterations, "converged": bool(result.converged)}

    def decide(self, item_id: int, votes: list[Vote]) -> Decision:
        votes = [v for v in votes if v.preference is not None]
        if not votes:
            return Decision("tie", 0.0, 0.0, 0, 0.0, False)
        if self.method == "mean":
            return decide_mean(votes, self.tie_margin)
        if self.method == "weighted":
            return decide_majority(votes, self.weights)
        if self.method == "dawid-skene" and item_id in self.posterior:
            winner, p = self.posterior[item_id]
            return _finish(votes, winner, p)
        return decide_majority(votes)
