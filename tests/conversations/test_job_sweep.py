"""The heartbeat and the sweep of conversations/jobs.py, without a worker (the killed-worker
tests are in tests/exports/test_job_worker_killed.py)."""

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string

from conversations.jobs import WORKER_STOPPED, heartbeat, job_models, job_run, jobs_sweep
from conversations.models import ImportJob, JobState
from conversations.tasks import jobs_sweep as jobs_sweep_task


def make_job(project, lead, **fields) -> ImportJob:
    return ImportJob.objects.create(
        project=project, created_by=lead, original_name="t.jsonl", **fields
    )


@pytest.mark.django_db
def test_sweep_fails_running_jobs_whose_heartbeat_is_stale_and_only_those(project, lead):
    now = timezone.now()
    stale_after = timedelta(seconds=django_settings.JOB_STALE_SECONDS)
    dead = make_job(
        project,
        lead,
        state=JobState.RUNNING,
        started_at=now - stale_after * 3,
        heartbeat_at=now - stale_after - timedelta(seconds=1),
    )
    alive = make_job(
        project,
        lead,
        state=JobState.RUNNING,
        started_at=now - stale_after * 3,
        heartbeat_at=now - stale_after + timedelta(seconds=5),
    )
    # running since before heartbeats existed (the jobs issue 13 found stuck)
    old = make_job(project, lead, state=JobState.RUNNING, started_at=now - stale_after * 2)
    waiting = make_job(project, lead)
    done = make_job(project, lead, state=JobState.SUCCEEDED, heartbeat_at=now - stale_after * 9)

    assert jobs_sweep(now=now) == 2
    states = {j.pk: (j.state, j.failure) for j in ImportJob.objects.all()}
    assert states[dead.pk] == (JobState.FAILED, WORKER_STOPPED)
    assert states[old.pk] == (JobState.FAILED, WORKER_STOPPED)
    assert states[alive.pk][0] == JobState.RUNNING
    assert states[waiting.pk][0] == JobState.QUEUED
    assert states[done.pk][0] == JobState.SUCCEEDED
    assert jobs_sweep(now=now) == 0  # idempotent


@pytest.mark.django_db
def test_the_periodic_task_calls_the_sweep(project, lead):
    long_ago = timezone.now() - timedelta(hours=1)
    job = make_job(project, lead, state=JobState.RUNNING, started_at=long_ago)
    assert jobs_sweep_task.delay().get() == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED


def test_beat_runs_the_sweep_every_minute_and_the_times_are_documented():
    entry = django_settings.CELERY_BEAT_SCHEDULE["jobs-sweep"]
    assert (entry["task"], entry["schedule"]) == ("conversations.tasks.jobs_sweep", 60)
    assert django_settings.JOB_STALE_SECONDS >= 2 * django_settings.JOB_HEARTBEAT_SECONDS
    readme = (django_settings.BASE_DIR / "README.md").read_text()
    for name in (
        "RATELOOP_JOB_HEARTBEAT_SECONDS",
        "RATELOOP_JOB_STALE_SECONDS",
        "RATELOOP_JOB_REQUEUE_SECONDS",
    ):
        assert f"`{name}`" in readme


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_heartbeat_is_renewed_while_the_work_runs_even_while_it_waits_for_the_database(
    project, lead, settings
):
    """The beat comes from its own connection: the job's own transaction, open and waiting,
    does not hold it back."""
    settings.JOB_HEARTBEAT_SECONDS = 0.1
    job = make_job(project, lead)
    seen = []

    def work(job: ImportJob) -> None:
        with connection.cursor() as cursor:  # the job's own transaction, busy for 1 s
            cursor.execute("BEGIN; SELECT pg_sleep(1); COMMIT")
        seen.append(ImportJob.objects.get(pk=job.pk).heartbeat_at)
        job.state = JobState.SUCCEEDED
        job.save()

    job = job_run(ImportJob, job.pk, work)
    assert job.state == JobState.SUCCEEDED
    assert seen[0] > job.started_at + timedelta(seconds=0.5)
    assert not [t for t in threading.enumerate() if t.name.startswith("heartbeat-")]


@pytest.mark.django_db(transaction=True)
def test_work_that_returns_without_an_outcome_still_ends_the_job(project, lead):
    job = job_run(ImportJob, make_job(project, lead).pk, lambda job: None)
    assert job.state == JobState.FAILED
    assert "without a result" in job.failure


@pytest.mark.django_db(transaction=True)
def test_heartbeat_stops_with_its_block(project, lead, settings):
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    job = make_job(project, lead, state=JobState.RUNNING)
    with heartbeat(job):
        time.sleep(0.3)
    job.refresh_from_db()
    last = job.heartbeat_at
    assert last is not None
    time.sleep(0.3)
    job.refresh_from_db()
    assert job.heartbeat_at == last


@pytest.mark.django_db
def test_sweep_sends_again_a_job_left_queued_too_long_once(project, lead):
    """Tasks run eagerly here: a job sent again runs at once (and fails: it has no file)."""
    now = timezone.now()
    requeue_after = timedelta(seconds=django_settings.JOB_REQUEUE_SECONDS)
    lost = make_job(project, lead)
    ImportJob.objects.filter(pk=lost.pk).update(created_at=now - requeue_after * 2)
    young = make_job(project, lead)
    jobs_sweep(now=now)
    lost.refresh_from_db()
    young.refresh_from_db()
    assert lost.state == JobState.FAILED
    assert "no file" in lost.failure
    assert (young.state, young.heartbeat_at) == (JobState.QUEUED, None)


def test_every_queued_job_kind_names_a_registered_task():
    names = {m.__name__: m.task_name for m in job_models()}
    assert names == {
        "ImportJob": "conversations.tasks.transcript_import_job",
        "JudgmentImportJob": "ratings.tasks.judgment_import_job",
        "ExportJob": "exports.tasks.export_job_run",
        "QualityRun": None,  # created running by the worker, never queued
    }
    for name in filter(None, names.values()):
        assert import_string(name).name == name


@pytest.mark.django_db
def test_sweep_covers_every_kind_of_job(project, lead):
    from exports.models import ExportJob
    from ratings.models import JudgmentImportJob, QualityRun

    long_ago = timezone.now() - timedelta(hours=1)
    running = {"state": JobState.RUNNING, "started_at": long_ago, "heartbeat_at": long_ago}
    jobs = [
        make_job(project, lead, **running),
        JudgmentImportJob.objects.create(project=project, original_name="j.jsonl", **running),
        ExportJob.objects.create(project=project, format="trl", **running),
        QualityRun.objects.create(project=project, **running),
    ]
    assert {type(j) for j in jobs} == set(job_models())
    assert jobs_sweep() == 4
    for job in jobs:
        job.refresh_from_db()
        assert (job.state, getattr(job, job.error_field)) == (JobState.FAILED, WORKER_STOPPED)
