"""Quality runs: agreement per task kind and criterion, per-rater quality, drift flags.

Guarantees of ``quality_compute``:
- reads judgments outside any long transaction and writes a run's results in one short
  transaction at the end; safe to run twice: a run whose judgments are unchanged since the
  last successful run is skipped (``data_version``), and drift flags are upserted on
  (project, rater, detector, window kind, window start), so a flag is never duplicated and a
  lead's acknowledgement or resolution is kept;
- incremental reading: on PostgreSQL a run reads only the judgments added since the last
  run (``ratings.quality_data``); the statistics are then recomputed over all judgments,
  since the leave-one-out consensus, the expanding drift baselines and the
  Benjamini-Hochberg family tie every window to the others (``force`` reads everything);
- every undefined statistic is stored without a value and with the reason;
- database errors propagate (the Celery task retries); bad data never raises.
"""

from ratings.services.quality.agreements import compute_agreements, data_version
from ratings.services.quality.raters import compute_raters
from ratings.services.quality.runs import (
    compute_drift,
    flag_update,
    quality_compute,
    quality_request,
)

__all__ = [
    "compute_agreements",
    "compute_drift",
    "compute_raters",
    "data_version",
    "flag_update",
    "quality_compute",
    "quality_request",
]
