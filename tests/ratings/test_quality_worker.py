"""The quality task through a real Celery worker on Redis and PostgreSQL."""

import time

import pytest

from ratings.models import AgreementSnapshot, QualityRun, RunState
from ratings.tasks import quality_refresh


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_quality_task_runs_in_a_worker_and_stores_a_run(worker, judged):
    project, _ = judged
    quality_refresh.delay(project.pk, "test")
    deadline = time.monotonic() + 120
    while not QualityRun.objects.filter(
        project=project, state__in=[RunState.SUCCEEDED, RunState.FAILED]
    ).exists():
        assert worker.poll() is None, worker.stdout.read().decode()
        assert time.monotonic() < deadline, "the worker did not finish the quality run in 120 s"
        time.sleep(0.5)
    run = QualityRun.objects.get(project=project)
    assert run.state == RunState.SUCCEEDED, run.error
    assert run.trigger == "test"
    assert AgreementSnapshot.objects.filter(run=run, metric="alpha_interval").exists()
    # run twice: nothing changed, so no second run is stored
    quality_refresh.delay(project.pk, "test")
    time.sleep(3)
    assert QualityRun.objects.filter(project=project).count() == 1
