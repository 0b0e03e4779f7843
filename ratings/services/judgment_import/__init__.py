"""Judgments made elsewhere: import them from JSONL, or make them from the sources' rankings.

Guarantees of ``judgment_import`` and ``source_ranks_import`` (docs/formats.md, "Existing
judgments"):
- one database transaction, and one import per project at a time (the project row is locked);
  by default a file with any invalid record imports nothing and ``JudgmentImportFailed`` is
  raised with every error (file, line, field, what was expected); with ``skip_invalid`` the
  valid records are imported and each bad one is written to ``rejects``;
- idempotent: a judgment is identified by its source and id, or by ``sha256:<hash>`` of its
  content (item, rater, time, answer) when it has no id. The same key with the same content
  is counted as a duplicate; with different content it is a conflict, reported and never
  overwritten;
- one current judgment per (item, rater): a judgment by a rater who already judged the item
  becomes a new version only when it was made later; the older one stays readable with
  ``is_current`` false. An earlier (or simultaneous) one is a conflict;
- items are found or created (pairwise: response A is the one with the lower id; a preference
  given on the source's A/B is converted). Imported judgments are external, have no
  assignment and leave the items' internal counters (``n_active``, ``n_done``) untouched;
- raters are found or created by user name; a new one gets an unusable password and an
  external ``RaterProfile``. A name that belongs to an internal user is refused;
- streaming: records are read, checked and written in batches, so memory stays flat.
"""

from ratings.services.judgment_import.records import (
    JudgmentImportFailed,
    JudgmentImportSummary,
    parse_record,
)
from ratings.services.judgment_import.service import (
    judgment_import,
    source_rank_rater_name,
    source_ranks_import,
)

__all__ = [
    "JudgmentImportFailed",
    "JudgmentImportSummary",
    "judgment_import",
    "parse_record",
    "source_rank_rater_name",
    "source_ranks_import",
]
