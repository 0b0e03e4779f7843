"""The database cut under a real worker (the prefork pool production runs) in the middle of a job.

The job is held at a known point by a real lock (as in tests/exports/test_job_worker_killed.py):
the test holds a lock on a table the job writes or reads, waits until the worker's backend waits
for it, then terminates every backend of the test database except its own two (what a restart
of PostgreSQL, a failover or a network cut does to the worker) and releases the lock.

By design (conversations/jobs.py) the job ends ``failed`` at once with a sentence saying the
connection was lost, nothing of it is kept, and the worker lives on and runs the next job on a
fresh connection (Celery closes a task's connections when it ends; a job whose claim still
meets a dead connection is retried, ``autoretry_for=(OperationalError,)`` in the tasks).
"""

import time

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db import transaction as db_transaction
from django.utils import timezone

from conversations.jobs import jobs_sweep
from conversations.models import Conversation, ImportJob, JobState, Message, Role
from conversations.services.import_jobs import import_job_create
from exports.models import ExportJob
from exports.services import export_job_create
from ratings.models import Item, Judgment, TaskKind
from ratings.services.items import items_queue
from tests.factories import pairwise_conversation

pytestmark = [pytest.mark.worker, pytest.mark.postgres]

LOST = "The database connection was lost while the job ran; start it again"
JOB_TIMEOUT = 20  # seconds: the longest wait for a step of a job


@pytest.fixture
def fast_heartbeat(monkeypatch, settings):
    """Heartbeats every half second in the worker, so its heartbeat connection is cut too."""
    monkeypatch.setenv("RATELOOP_JOB_HEARTBEAT_SECONDS", "0.5")
    monkeypatch.setenv("RATELOOP_JOB_STALE_SECONDS", "2")


class Cutter:
    """The lock holder (a connection of its own) and the cut of every other backend."""

    def __init__(self):
        db = connection.settings_dict
        self.holder = psycopg.connect(
            host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=False
        )

    def lock(self, model, mode: str) -> None:
        self.holder.execute(f"LOCK TABLE {model._meta.db_table} IN {mode} MODE")

    def release(self) -> None:
        self.holder.rollback()

    def ours(self) -> list[int]:
        """This test's backends: Django's connection and the lock holder."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return [cursor.fetchone()[0], self.holder.info.backend_pid]

    def waiting_on(self, model) -> list[int]:
        """The backends waiting for a lock on ``model``'s table."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
                [model._meta.db_table],
            )
            return [r[0] for r in cursor.fetchall()]

    def holds(self, pid: int, model, mode: str) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_locks WHERE pid = %s AND relation = %s::regclass "
                "AND mode = %s AND granted",
                [pid, model._meta.db_table, mode],
            )
            return cursor.fetchone() is not None

    def others(self, select: str = "pid") -> list:
        """Every client backend of the test database but ours: the worker's."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {select} FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend' "
                "AND pid <> ALL(%s)",
                [self.ours()],
            )
            return cursor.fetchall()

    def cut(self) -> list[int]:
        """Terminate the worker's backends; their pids."""
        return [pid for pid, done in self.others("pid, pg_terminate_backend(pid)") if done]

    def close(self) -> None:
        self.holder.close()


@pytest.fixture
def cutter():
    c = Cutter()
    yield c
    c.close()


def wait_for(condition, what: str, worker, timeout: float = JOB_TIMEOUT) -> float:
    """Wait for ``condition()`` while the worker lives; the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert worker.poll() is None, "the worker exited:\n" + worker.stdout.read().decode()
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} did not happen in {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def ended(job) -> bool:
    job.refresh_from_db()
    return job.state in (JobState.SUCCEEDED, JobState.FAILED)


def transcripts(prefix: str, n: int) -> SimpleUploadedFile:
    records = "".join(
        f'{{"id": "{prefix}{i}", "messages": [{{"role": "user", "content": "Q{i}"}}, '
        f'{{"role": "assistant", "content": "A{i}"}}]}}\n'
        for i in range(n)
    )
    return SimpleUploadedFile(f"{prefix}.jsonl", records.encode())


@pytest.mark.django_db(transaction=True)
def test_import_cut_from_the_database_fails_whole_and_the_worker_recovers(
    fast_heartbeat, worker, cutter, project, member
):
    lead = member(Role.LEAD)
    # SHARE lets the import read and COPY its conversations, and holds it at its messages
    cutter.lock(Message, "SHARE")
    with db_transaction.atomic():
        job = import_job_create(project=project, user=lead, upload=transcripts("cut", 50))
    wait_for(lambda: cutter.waiting_on(Message), "the import's wait for the lock", worker)
    [blocked] = cutter.waiting_on(Message)
    # its conversations are written, in its open transaction
    assert cutter.holds(blocked, Conversation, "RowExclusiveLock")
    cut = cutter.cut()
    assert blocked in cut
    cutter.release()

    took = wait_for(lambda: ended(job), "the end of the cut import", worker)
    assert job.state == JobState.FAILED
    assert job.failure.startswith(LOST), job.failure
    assert job.finished_at is not None
    assert took < 10
    # all or nothing: the conversations it had written went with its transaction
    assert not Conversation.objects.filter(project=project).exists()
    assert not Message.objects.filter(conversation__project=project).exists()
    assert jobs_sweep() == 0  # nothing left running for the sweep to find
    assert worker.poll() is None

    # the worker keeps no connection between jobs (Celery closes them after each task), so
    # none of the dead ones is used again: the next job runs on a fresh one
    wait_for(lambda: not cutter.others(), "the worker's closing of its connections", worker)
    with db_transaction.atomic():
        again = import_job_create(project=project, user=lead, upload=transcripts("cut", 50))
    wait_for(lambda: ended(again), "the end of the next import", worker)
    assert again.state == JobState.SUCCEEDED, again.failure
    assert again.imported == 50
    assert Conversation.objects.filter(project=project).count() == 50
    assert ImportJob.objects.get(pk=job.pk).state == JobState.FAILED  # not run again


@pytest.mark.django_db(transaction=True)
def test_export_cut_from_the_database_fails_without_files_and_the_worker_recovers(
    fast_heartbeat, worker, cutter, project, member, settings
):
    settings.EXPORT_CACHE_WARM = False  # the one pool process is for the export
    lead = member(Role.LEAD)
    rater = member(Role.EVALUATOR)
    pairwise_conversation(project, external_id="p0")
    items_queue(project=project, user=lead, kinds=(TaskKind.PAIRWISE,))
    item = Item.objects.get(project=project, kind=TaskKind.PAIRWISE)
    Judgment.objects.create(
        item=item, rater=rater, preference=-1, left_is_a=True, created_at=timezone.now()
    )
    cutter.lock(Message, "ACCESS EXCLUSIVE")  # read per chunk of items, after the file is opened
    with db_transaction.atomic():  # CSV: the general path, which writes row by row
        job = export_job_create(project=project, user=lead, fmt="trl", file_type="csv")
    wait_for(lambda: cutter.waiting_on(Message), "the export's wait for the lock", worker)
    folder = job.work_dir()
    wait_for(lambda: any(folder.glob(".*.partial")), "the partial file", worker)
    [blocked] = cutter.waiting_on(Message)
    assert blocked in cutter.cut()
    cutter.release()

    took = wait_for(lambda: ended(job), "the end of the cut export", worker)
    assert job.state == JobState.FAILED
    assert job.error.startswith(LOST), job.error
    assert took < 10
    assert not folder.exists(), "the cut export's files were left behind"
    assert not job.files
    assert jobs_sweep() == 0
    assert worker.poll() is None

    wait_for(lambda: not cutter.others(), "the worker's closing of its connections", worker)
    with db_transaction.atomic():
        again = export_job_create(project=project, user=lead, fmt="trl", file_type="csv")
    wait_for(lambda: ended(again), "the end of the next export", worker)
    assert again.state == JobState.SUCCEEDED, again.error
    assert again.rows_written == 1
    assert all((again.work_dir() / f["name"]).is_file() for f in again.files)
    assert ExportJob.objects.get(pk=job.pk).state == JobState.FAILED
