"""The life of a background job row, written once for every kind of job.

A job row (a ``BackgroundJob``: transcript import, judgment import, export, quality run) moves
``queued -> running -> succeeded | failed`` and never stays anywhere else for good:

- **Queueing** (``job_enqueue``): the service creates the row in its transaction; the task is
  sent once that commits. If the broker cannot take the message, the row is marked ``failed``
  ("could not be queued") and ``BrokerUnavailable`` is raised, which the API answers 503 and the
  web pages show as a page saying to try again (config/api_errors.py, config/job_errors.py).
- **Running** (``job_run``): a worker claims the row (``queued -> running`` in one UPDATE, so
  a message delivered twice runs the job once), renews ``heartbeat_at`` every
  ``JOB_HEARTBEAT_SECONDS`` from a thread on its own database connection while the work runs,
  and whatever exception the work raises ends the row ``failed`` with a sentence a user can act
  on (``failure_message``); the job's work folder is removed.
- **Sweeping** (``jobs_sweep``, every minute from Celery beat): a ``running`` row whose
  heartbeat is older than ``JOB_STALE_SECONDS`` belongs to a worker that died (SIGKILL, out of
  memory, machine lost). It is failed with ``WORKER_STOPPED`` and its work folder removed.
  A ``queued`` row not taken ``JOB_REQUEUE_SECONDS`` after its message was sent has its
  message sent again (the broker may have lost it); the claim makes a duplicate harmless.
  A job is not retried automatically: one that killed its worker would kill the next one too;
  running it again is safe (imports add nothing twice, exports start from an empty folder).
"""

import logging
import shutil
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError, IntegrityError, connections, transaction
from django.db import InterfaceError as DbInterfaceError
from django.db import OperationalError as DbOperationalError
from django.db import utils as db_errors
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from kombu.exceptions import OperationalError as BrokerOperationalError

from conversations.models import BackgroundJob, JobState

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=BackgroundJob)

WORKER_STOPPED = (
    "The worker stopped while running this job (it was ended or ran out of memory); "
    "nothing of it was kept. Start it again."
)
NOT_QUEUED = "The job could not be queued: the task queue was not reachable. Start it again."
NO_RESULT = "The job ended without a result. Start it again."
TRY_AGAIN = (
    "The task queue is not reachable, so the job could not be started; try again in a minute."
)

# What a person can do about each kind of error; the error's own first line follows.
EXPLANATIONS: tuple[tuple[type[BaseException] | tuple, str], ...] = (
    (
        DataError,
        "The database refused a value in the data (a NUL character \\u0000, "
        "or a number or text too large for its field)",
    ),
    (IntegrityError, "The data conflicts with what is already stored"),
    (
        (DbOperationalError, DbInterfaceError),
        "The database connection was lost while the job ran; start it again",
    ),
    (RecursionError, "The data is nested too deeply to be read"),
    (MemoryError, "The job ran out of memory"),
    ((EOFError, zlib.error), "The file is truncated or is not a valid compressed file"),
    (
        UnicodeError,
        "The file holds text that is not valid UTF-8 (or an unpaired surrogate such as \\ud800)",
    ),
    (OSError, "A file could not be read or written"),
)


class BrokerUnavailable(Exception):
    """The broker did not take a job's message; the job (if any) is marked failed."""

    def __init__(self, job: BackgroundJob | None = None):
        super().__init__(TRY_AGAIN)
        self.job = job


def failure_message(exc: BaseException) -> str:
    """One paragraph for the job's page: what happened, in words, then the error's first line.

    Refusals written for people (``ValidationError``, ``ValueError``) are kept as they are.
    """
    detail = (str(exc).strip().splitlines() or [""])[0][:300]
    kinds = (type(exc), *_wrapper_of(exc))
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)[:2000]
    if isinstance(exc, ValueError) and "integer string conversion" in detail:
        return f"A number in the data has too many digits ({detail})"
    for types, explanation in EXPLANATIONS:
        if any(issubclass(kind, types) for kind in kinds):
            return f"{explanation} ({type(exc).__name__}: {detail})" if detail else explanation
    if isinstance(exc, ValueError) and detail:
        return detail
    return (
        f"The job stopped on an unexpected error ({type(exc).__name__}: {detail}); "
        "the worker's log has the details."
    )


def _wrapper_of(exc: BaseException) -> tuple[type[DatabaseError], ...]:
    """Django's class for an error of the database driver itself (psycopg, sqlite3), raised
    where code uses the driver's connection directly (the COPY writer): explained alike."""
    driver = connections["default"].Database
    return tuple(
        getattr(db_errors, name)
        for name in ("DataError", "IntegrityError", "OperationalError", "InterfaceError")
        if isinstance(exc, getattr(driver, name))
    )


def job_models() -> list[type[BackgroundJob]]:
    """Every concrete job model of the installed apps."""
    return [m for m in apps.get_models() if issubclass(m, BackgroundJob)]


def job_enqueue(job: BackgroundJob, task, *args) -> None:
    """Send ``task(job.pk, *args)`` once the current transaction commits.

    Effects: if the broker refuses, the job is marked failed (``NOT_QUEUED``) and
    ``BrokerUnavailable`` is raised from the commit, that is out of the service call.
    """

    def send() -> None:
        try:
            task.apply_async((job.pk, *args))
        except (BrokerOperationalError, OSError) as exc:
            logger.error("could not queue %s: %s", job, exc)
            _finish(type(job), job.pk, JobState.FAILED, NOT_QUEUED, only_state=JobState.QUEUED)
            raise BrokerUnavailable(job) from exc

    transaction.on_commit(send)


def task_enqueue(task, *args) -> None:
    """Send a task that has no job row once the current transaction commits; raise
    ``BrokerUnavailable`` from the commit if the broker refuses it."""

    def send() -> None:
        try:
            task.apply_async(args)
        except (BrokerOperationalError, OSError) as exc:
            logger.error("could not queue %s: %s", task.name, exc)
            raise BrokerUnavailable() from exc

    transaction.on_commit(send)


def job_run(model: type[J], job_id: int, work: Callable[[J], None]) -> J:
    """Claim a queued job, run ``work(job)`` with a heartbeat, and make sure the row ends.

    ``work`` writes the job's result and its final state itself. If it raises, the job ends
    ``failed`` with ``failure_message`` and its work folder is removed; the exception does not
    escape (it is logged), except one that ends the process (it is re-raised after the row is
    marked). A job that is not queued (finished, or running elsewhere) is left as it is.
    """
    now = timezone.now()
    claimed = model.objects.filter(pk=job_id, state=JobState.QUEUED).update(
        state=JobState.RUNNING, started_at=now, heartbeat_at=now
    )
    job = model.objects.get(pk=job_id)
    if not claimed:
        logger.info("%s is not queued: left as it is", job)
        return job
    with heartbeat(job):
        try:
            work(job)
        except Exception as exc:
            logger.exception("%s failed", job)
            job_fail(job, failure_message(exc))
        except BaseException:
            job_fail(job, WORKER_STOPPED)
            raise
    _finish(model, job.pk, JobState.FAILED, NO_RESULT, only_state=JobState.RUNNING)
    job.refresh_from_db()
    return job


def job_fail(job: BackgroundJob, message: str) -> None:
    """Mark a job failed with ``message`` and remove its work folder. If the database
    connection is broken, it is replaced once; if that fails too the error propagates (the
    task may retry; the sweep fails the job once its heartbeat is stale)."""
    remove_work_dir(job)
    try:
        _finish(type(job), job.pk, JobState.FAILED, message)
    except DatabaseError:
        if connections["default"].in_atomic_block:
            raise
        connections["default"].close()
        _finish(type(job), job.pk, JobState.FAILED, message)


def remove_work_dir(job: BackgroundJob) -> None:
    folder = job.work_dir()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _finish(model, pk: int, state: str, message: str, only_state: str | None = None) -> int:
    rows = model.objects.filter(pk=pk)
    if only_state is not None:
        rows = rows.filter(state=only_state)
    return rows.update(state=state, finished_at=timezone.now(), **{model.error_field: message})


@contextmanager
def heartbeat(job: BackgroundJob) -> Iterator[None]:
    """Renew ``job.heartbeat_at`` every ``JOB_HEARTBEAT_SECONDS`` while the block runs.

    The beat comes from a thread with its own database connection, so it goes on while the
    job's own transaction is open or its thread waits for the database. On SQLite a beat may
    wait for the job's write lock; it is skipped then, and the next one tries again.
    """
    stop = threading.Event()
    model, pk = type(job), job.pk
    interval = max(0.1, float(settings.JOB_HEARTBEAT_SECONDS))

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    model.objects.filter(pk=pk, state=JobState.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError as exc:
                    logger.warning("heartbeat of %s skipped: %s", job, exc)
                    connections["default"].close()
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=beat, name=f"heartbeat-{model.__name__}-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def jobs_sweep(*, now=None) -> int:
    """Fail every running job whose worker has stopped renewing its heartbeat for
    ``JOB_STALE_SECONDS`` (jobs from before heartbeats: by ``started_at``), and remove their
    work folders; send again the task of every job still queued ``JOB_REQUEUE_SECONDS`` after
    its last sending (a message the broker lost, e.g. Redis restarted without persistence; a
    duplicate does nothing, as the claim takes a queued job once). Returns how many jobs it
    failed. Safe to run anywhere, any number of times.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    stale = Q(state=JobState.RUNNING) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    failed = 0
    for model in job_models():
        for job in model.objects.filter(stale):
            # the same condition again: a beat that came in meanwhile keeps the job alive
            rows = model.objects.filter(stale, pk=job.pk).update(
                state=JobState.FAILED,
                finished_at=timezone.now(),
                **{model.error_field: WORKER_STOPPED},
            )
            if rows:
                logger.warning("%s: its worker stopped; failed by the sweep", job)
                remove_work_dir(job)
                failed += 1
        if model.task_name is not None:
            _send_again(model, now - timedelta(seconds=settings.JOB_REQUEUE_SECONDS), now)
    return failed


def _send_again(model: type[BackgroundJob], cutoff, now) -> None:
    """For a queued job, ``heartbeat_at`` is when its message was last sent again."""
    waiting = model.objects.filter(state=JobState.QUEUED).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    task = import_string(model.task_name)
    for pk in waiting.values_list("pk", flat=True):
        model.objects.filter(pk=pk, state=JobState.QUEUED).update(heartbeat_at=now)
        try:
            task.apply_async((pk,))
        except (BrokerOperationalError, OSError) as exc:
            logger.error("could not send %s %s again: %s", model.__name__, pk, exc)
            return
        logger.warning(
            "%s %s waited %s s in the queue: sent again",
            model.__name__,
            pk,
            settings.JOB_REQUEUE_SECONDS,
        )
