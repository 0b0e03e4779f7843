"""A real worker (the prefork pool production runs) killed with SIGKILL in the middle of a job.

The job is held at a known point by a real lock: the test takes an ACCESS EXCLUSIVE lock on a
table the job reads once it is running, so the worker waits inside the job (its transaction
open, the export's partial file on disk) while its heartbeat goes on. Then the worker is
killed, and the sweep fails the job with "the worker stopped" and removes its files.
"""

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db import transaction as db_transaction
from django.utils import timezone

from conversations.jobs import WORKER_STOPPED, jobs_sweep
from conversations.models import Conversation, ImportJob, JobState, Message, Role
from conversations.services.import_jobs import import_job_create
from exports.models import ExportJob
from exports.services import export_job_create
from ratings.models import Item, Judgment, TaskKind
from ratings.services.items import items_queue
from tests.factories import pairwise_conversation

pytestmark = [pytest.mark.worker, pytest.mark.postgres]

HEARTBEAT = 0.5  # seconds, in the worker
STALE = 2  # seconds, in the sweep (this process)


@pytest.fixture
def fast_heartbeat(monkeypatch, settings):
    """Heartbeats every half second in the worker that the ``worker`` fixture starts next."""
    monkeypatch.setenv("RATELOOP_JOB_HEARTBEAT_SECONDS", str(HEARTBEAT))
    monkeypatch.setenv("RATELOOP_JOB_STALE_SECONDS", str(STALE))
    settings.JOB_STALE_SECONDS = STALE


@pytest.fixture
def table_lock():
    """``lock(Model)``: hold an ACCESS EXCLUSIVE lock on the model's table until released."""
    db = connection.settings_dict
    conn = psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=False
    )

    def lock(model) -> None:
        conn.execute(f"LOCK TABLE {model._meta.db_table} IN ACCESS EXCLUSIVE MODE")

    yield lock
    conn.rollback()
    conn.close()


def children(pid: int) -> list[int]:
    """The worker's pool processes (its child processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_for(condition, what: str, worker, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.poll() is None, worker.stdout.read().decode()
        if time.monotonic() > deadline:
            os.set_blocking(worker.stdout.fileno(), False)
            log = (worker.stdout.read() or b"").decode()
            raise AssertionError(f"{what} did not happen in {timeout} s; the worker said:\n{log}")
        time.sleep(0.1)


def beating(job) -> bool:
    """The job runs and its heartbeat has been renewed since it started."""
    job.refresh_from_db()
    return job.state == JobState.RUNNING and job.heartbeat_at > job.started_at


def sweep_until_failed(job, timeout: float = 4 * STALE) -> float:
    """Run the sweep as beat would (every second here) until it fails the job; seconds taken."""
    started = time.monotonic()
    while not jobs_sweep():
        assert time.monotonic() - started < timeout, "the sweep did not fail the job"
        time.sleep(1)
    job.refresh_from_db()
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_import_whose_pool_process_is_killed_is_failed_by_the_sweep(
    fast_heartbeat, worker, table_lock, project, member
):
    """SIGKILL of the pool process running the import (what the kernel's OOM killer does)."""
    lead = member(Role.LEAD)
    table_lock(Conversation)
    records = "".join(
        f'{{"id": "k{i}", "messages": [{{"role": "user", "content": "Q{i}"}}, '
        f'{{"role": "assistant", "content": "A{i}"}}]}}\n'
        for i in range(50)
    )
    with db_transaction.atomic():
        job = import_job_create(
            project=project, user=lead, upload=SimpleUploadedFile("k.jsonl", records.encode())
        )
    wait_for(lambda: beating(job), "the import's heartbeat", worker, timeout=20)
    [pool_process] = children(worker.pid)
    os.kill(pool_process, signal.SIGKILL)
    assert jobs_sweep() == 0, "a job whose heartbeat is fresh was failed"
    took = sweep_until_failed(job)
    assert job.state == JobState.FAILED
    assert job.failure == WORKER_STOPPED
    assert took <= STALE + 2
    assert worker.poll() is None  # the worker itself lives on, with a new pool process
    assert ImportJob.objects.get(pk=job.pk).finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_export_whose_worker_is_killed_is_failed_and_its_partial_file_removed(
    fast_heartbeat, worker, table_lock, project, member, settings
):
    """SIGKILL of the whole worker (main process and pool process) mid-write."""
    settings.EXPORT_CACHE_WARM = False  # the one pool process is for the export
    lead = member(Role.LEAD)
    rater = member(Role.EVALUATOR)
    pairwise_conversation(project, external_id="p0")
    items_queue(project=project, user=lead, kinds=(TaskKind.PAIRWISE,))
    item = Item.objects.get(project=project, kind=TaskKind.PAIRWISE)
    Judgment.objects.create(
        item=item, rater=rater, preference=-1, left_is_a=True, created_at=timezone.now()
    )
    table_lock(Message)  # read per chunk of items, after the output file is opened
    with db_transaction.atomic():  # CSV: the general path, which writes row by row
        job = export_job_create(project=project, user=lead, fmt="trl", file_type="csv")
    wait_for(lambda: beating(job), "the export's heartbeat", worker)
    folder = job.work_dir()
    wait_for(lambda: any(folder.glob(".*.partial")), "the partial file", worker)
    # blocked but alive: its heartbeat keeps the sweep away for longer than the stale time
    time.sleep(STALE + 0.5)
    assert jobs_sweep() == 0, "a live job was failed"
    pool = children(worker.pid)
    for pid in [worker.pid, *pool]:
        os.kill(pid, signal.SIGKILL)
    worker.wait(timeout=10)
    sweep_until_failed(job)
    assert job.state == JobState.FAILED
    assert job.error == WORKER_STOPPED
    assert not folder.exists(), "the killed export's files were left behind"
    assert not job.files
    # the sweep is idempotent and leaves finished jobs alone, whatever their age
    later = timezone.now() + timedelta(hours=1)
    assert jobs_sweep(now=later) == 0
    assert ExportJob.objects.get(pk=job.pk).state == JobState.FAILED
