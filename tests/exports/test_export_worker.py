"""An export job through a real Celery worker on Redis and PostgreSQL."""

import time

import pytest

from conversations.models import JobState
from exports.models import ExportJob
from exports.services import export_job_create, job_dir


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_export_job_runs_in_a_worker(worker, exportable, lead):
    project, _, _ = exportable
    job = export_job_create(project=project, user=lead, fmt="trl", file_type="parquet")
    deadline = time.monotonic() + 120
    while job.state not in (JobState.SUCCEEDED, JobState.FAILED):
        assert worker.poll() is None, worker.stdout.read().decode()
        assert time.monotonic() < deadline, "the worker did not finish the export in 120 s"
        time.sleep(0.3)
        job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.rows_written == 4
    data = next(f for f in job.files if f["name"].endswith(".parquet"))
    assert (job_dir(job) / data["name"]).stat().st_size == data["bytes"]
    assert ExportJob.objects.count() == 1
