"""Quality runs: agreement per task kind and criterion, per-rater quality, drift flags.

Guarantees of ``quality_compute``:
- reads judgments outside any long transaction and writes a run's results in one short
  transaction at the end; safe to run twice: a run whose judgments are unchanged since the
  last successful run is skipped (``data_version``), and drift flags are upserted on
  (project, rater, detector, window kind, window start), so a flag is never duplicated and a
  lead's acknowledgement or resolution is kept;
- drift (``ratings.drift.online``): each complete window of a rater's stream is tested once,
  by the first run that sees it complete (``DriftCursor`` counts the windows tested, read
  again under a row lock when the run writes), at a fixed level; a flag opens on the first
  alarm of a (rater, detector) and stays until a lead resolves it; every run re-checks open
  and acknowledged flags on the latest data and marks the ones it no longer supports;
- incremental reading: on PostgreSQL a run reads only the judgments added since the last
  run (``ratings.quality_data``); the statistics are then recomputed over all judgments,
  since the leave-one-out consensus ties every judgment to its item's others (``force``
  reads everything);
- counted judgments: internal ones and imported ones marked ``counts_for_quality``;
- every undefined statistic is stored without a value and with the reason;
- database errors propagate (the Celery task retries); bad data never raises.
"""

from ratings.services.quality.agreements import compute_agreements, data_version
from ratings.services.quality.raters import compute_raters
from ratings.services.quality.runs import (
    compute_drift,
    drift_columns,
    drift_online,
    flag_summary,
    flag_update,
    quality_compute,
    quality_request,
)

__all__ = [
    "compute_agreements",
    "compute_drift",
    "compute_raters",
    "drift_columns",
    "drift_online",
    "flag_summary",
    "data_version",
    "flag_update",
    "quality_compute",
    "quality_request",
]
