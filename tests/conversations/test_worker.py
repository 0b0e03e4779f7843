"""The import job path through a real Celery worker on Redis and PostgreSQL (not eager)."""

import json
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from conversations.models import Conversation, ImportJob, JobState

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_uploaded_file_is_imported_by_a_real_worker(worker, lead, project):
    records = [
        {
            "id": f"w{i}",
            "messages": [
                {"role": "user", "content": f"Q{i}"},
                {"role": "assistant", "content": f"A{i}"},
            ],
        }
        for i in range(30)
    ]
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    client = APIClient()
    client.force_authenticate(lead)
    response = client.post(
        f"/api/v1/projects/{project.slug}/imports/",
        {"file": SimpleUploadedFile("batch.jsonl", data)},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    status_url = response.json()["status_url"]
    deadline = time.monotonic() + 90
    job = ImportJob.objects.get(pk=response.json()["id"])
    while job.state not in (JobState.SUCCEEDED, JobState.FAILED):
        assert worker.poll() is None, worker.stdout.read().decode()
        assert time.monotonic() < deadline, "the worker did not finish the job in 90 s"
        time.sleep(0.3)
        job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.errors
    assert Conversation.objects.filter(project=project).count() == 30
    body = client.get(status_url).json()
    assert (body["state"], body["imported"], body["progress"]) == ("succeeded", 30, 1.0)
