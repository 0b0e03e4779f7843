"""Gunicorn settings for the web service: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

Command-line options and ``GUNICORN_CMD_ARGS`` override what is set here.

- Threaded workers (gthread), ``WEB_CONCURRENCY`` processes (default: one per CPU) of
  ``RATELOOP_WEB_THREADS`` threads (default 4). A rating call spends about half its time
  waiting on PostgreSQL, which threads overlap; processes give the Python work more CPUs.
- Keep-alive of 10 s, so that a rater's browser or client reuses its connection between a
  task and its submit.
- The interpreter's thread switch interval is set in each worker to
  ``RATELOOP_GIL_SWITCH_INTERVAL_MS`` (default 0.5 ms instead of Python's 5 ms): a thread
  whose database answer has arrived, or the thread that hands a new request to the pool,
  otherwise waits up to 5 ms for another thread's Python work before it runs. On the rating
  benchmark this lowered the mean latency of each call by about a fifth and raised the
  ratings per second by 4-7% (bench/RESULTS.md).
"""

import os
import sys


def _positive_number(name: str, default: str, kind=float):
    raw = os.environ.get(name, default)
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SystemExit(f"{name} must be a positive number, not {raw!r}")
    return value


wsgi_app = "config.wsgi:application"
worker_class = "gthread"
workers = _positive_number("WEB_CONCURRENCY", str(os.cpu_count() or 1), int)
threads = _positive_number("RATELOOP_WEB_THREADS", "4", int)
keepalive = 10
switch_interval_s = _positive_number("RATELOOP_GIL_SWITCH_INTERVAL_MS", "0.5") / 1000


def post_fork(server, worker) -> None:
    sys.setswitchinterval(switch_interval_s)
