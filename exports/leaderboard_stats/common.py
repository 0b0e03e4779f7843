"""Constants and helpers the leaderboard statistics share."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

try:  # Optional: keeps BLAS single-threaded during the many tiny L-BFGS-B solves.
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    threadpool_limits = None


STATUS_OK = "ok"
STATUS_INSUFFICIENT = "insufficient data"

LN10 = math.log(10.0)

OUTCOMES = {"a": "A", "b": "B", "tie": "tie"}

# L-BFGS-B settings. The objective is divided by the number of battles, so these
# tolerances are relative to the data size.
LBFGS_OPTIONS = {"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20}
GRAD_ACCEPT = 1e-7


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread if threadpoolctl is installed.

    The L-BFGS-B solver makes BLAS calls on vectors of a few dozen entries; a
    multi-threaded BLAS only adds synchronisation cost there (badly so on a busy machine).
    """
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
