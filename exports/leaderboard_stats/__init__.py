"""Bradley–Terry leaderboard statistics for pairwise model comparisons.

Pure numerical code (numpy + scipy, no Django). A *battle* is one pairwise judgment::

    (model_a, model_b, outcome)               # position unknown
    (model_a, model_b, outcome, left_is_a)    # left_is_a: True, False or None

``outcome`` is ``"A"`` (model_a won), ``"B"`` (model_b won) or ``"tie"``.

Battles are first aggregated into *cells*: one cell per unordered model pair and display
side (model ``i`` shown left, model ``j`` shown left, or unknown), holding the counts of the
three outcomes. Every fit works on the cells only, so its cost depends on the number of
distinct (pair, outcome, side) combinations and not on the number of judgments.

See ``docs/leaderboard.md`` for the model, the formulas and the defaults.
"""

from exports.leaderboard_stats.bootstrap import BootstrapResult, bootstrap, ci_rank
from exports.leaderboard_stats.common import STATUS_INSUFFICIENT, STATUS_OK
from exports.leaderboard_stats.counts import (
    PairCounts,
    WinTieLoss,
    outcome_counts,
    win_tie_loss_matrix,
)
from exports.leaderboard_stats.fit import BTResult, bradley_terry

__all__ = [
    "STATUS_INSUFFICIENT",
    "STATUS_OK",
    "BTResult",
    "BootstrapResult",
    "PairCounts",
    "WinTieLoss",
    "bootstrap",
    "bradley_terry",
    "ci_rank",
    "outcome_counts",
    "win_tie_loss_matrix",
]
