"""What both reports share: who may read them, who sees rater names, small statistics."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from scipy.stats import norm

from conversations.models import Project, Role
from ratings.consensus import kb as consensus_kb
from ratings.consensus import kb_consensus as kb_rule
from ratings.models import Scale, Verdict

REPORT_ROLES: tuple[str, ...] = (Role.LEAD, Role.CONSUMER)

DECISIVE = (Verdict.CORRECT.value, Verdict.INCORRECT.value, Verdict.INCOMPLETE.value)
DISPUTED = consensus_kb.DISPUTED
CANNOT_JUDGE = consensus_kb.ABSTAIN
KB_PROBLEMS = ("wrong", "outdated", "missing")
NUMERIC_SCALES = (Scale.LIKERT.value, Scale.BINARY.value)


# Bootstrap replicates one leaderboard request may ask for, per role. Replicates cost CPU in
# the web process, linearly, and more with more models (0.6 s per 1000 on the audit's data,
# 1.8 s with 12 models and 3,000 battles): a data consumer gets the default, a lead twice
# that for a final report (2,000 is the usual size for percentile intervals). Larger values
# answer 400 naming the maximum (docs/reports.md).
DEFAULT_BOOT = 1000
BOOT_LIMITS: dict[str, int] = {Role.LEAD: 2000, Role.CONSUMER: 1000}


def boot_limit(role: str | None) -> int:
    """The largest ``n_boot`` a reader with ``role`` may ask for (the smallest when unknown)."""
    return BOOT_LIMITS.get(role, min(BOOT_LIMITS.values()))


def rater_names_visible(*, project: Project, role: str | None) -> bool:
    """Whether a report reader sees rater user names: leads always (they see every judgment
    anyway), data consumers only when the project allows it; everyone else gets pseudonyms."""
    return role == Role.LEAD or bool(project.show_rater_identities)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion ``k / n``; None when ``n == 0``.

    Guarantees ``0 <= low <= k/n <= high <= 1``; unlike the normal approximation it stays
    inside [0, 1] and is not degenerate at ``k = 0`` or ``k = n``.
    """
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError("k must be between 0 and n")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def kb_consensus(verdicts: Iterable[str]) -> str | None:
    """One answer's verdict from its current judgments, by the rule of
    ``ratings.consensus.kb`` (``cannot_judge`` abstains): a verdict, ``"disputed"``,
    ``"cannot_judge"`` when every vote abstains, or None with no votes at all."""
    return kb_rule(verdicts).verdict


def verdict_shares(counts: Counter) -> dict[str, Any]:
    """Counts, shares and Wilson intervals of one group of answers (flat, CSV-ready).

    ``judged`` (the denominator) is the answers whose verdict is correct, incorrect,
    incomplete or disputed; cannot-judge answers are counted but left out of the shares.
    """
    judged = sum(counts[v] for v in (*DECISIVE, DISPUTED))
    row: dict[str, Any] = {"judged": judged}
    for verdict in (*DECISIVE, DISPUTED, CANNOT_JUDGE):
        row[verdict] = counts[verdict]
    for verdict in DECISIVE:
        ci = wilson_interval(counts[verdict], judged)
        row[f"share_{verdict}"] = counts[verdict] / judged if judged else None
        row[f"share_{verdict}_low"] = ci[0] if ci else None
        row[f"share_{verdict}_high"] = ci[1] if ci else None
    row["share_disputed"] = counts[DISPUTED] / judged if judged else None
    return row
