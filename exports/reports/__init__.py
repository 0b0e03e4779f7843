"""Report builders: KB correctness (the SMEs' verdicts) and the model leaderboard.

Each builder reads one project with QuerySets, computes with numpy/scipy and returns plain
data (dataclasses holding lists of flat dicts) that the HTML pages, the JSON API and the CSV
files share, so the three never disagree. Nothing here writes to the database or knows
about HTTP; access checks happen before a builder is called. See ``docs/reports.md``.
"""

from exports.reports.common import (
    BOOT_LIMITS,
    DEFAULT_BOOT,
    REPORT_ROLES,
    boot_limit,
    kb_consensus,
    rater_names_visible,
    wilson_interval,
)
from exports.reports.kb import KBFilters, KBReport, kb_filter_choices, kb_items, kb_report
from exports.reports.leaderboard import (
    Battles,
    Leaderboard,
    criterion_means,
    criterion_table,
    leaderboard_csv_rows,
    leaderboard_report,
    pairwise_battles,
)

__all__ = [
    "BOOT_LIMITS",
    "DEFAULT_BOOT",
    "REPORT_ROLES",
    "Battles",
    "KBFilters",
    "KBReport",
    "Leaderboard",
    "boot_limit",
    "criterion_means",
    "criterion_table",
    "kb_consensus",
    "kb_filter_choices",
    "kb_items",
    "kb_report",
    "leaderboard_csv_rows",
    "leaderboard_report",
    "pairwise_battles",
    "rater_names_visible",
    "wilson_interval",
]
