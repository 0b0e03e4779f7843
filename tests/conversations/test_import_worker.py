"""Imports through a real Celery worker of the pool production runs (prefork; tests/conftest.py),
on PostgreSQL: a child of that pool may not fork the import's parser, so it parses in-process
(test_worker.py imports a valid file; here a refused one, and a judgment import job)."""

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from conversations.models import Conversation, JobState
from ratings.models import Judgment
from tests.ratings.test_judgment_import import SCORE, conv  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _finished(client: APIClient, status_url: str, worker) -> dict:
    deadline = time.monotonic() + 90
    while True:
        body = client.get(status_url).json()
        if body["state"] in (JobState.SUCCEEDED, JobState.FAILED):
            return body
        assert worker.poll() is None, worker.stdout.read().decode()
        assert time.monotonic() < deadline, "the worker did not finish the job in 90 s"
        time.sleep(0.3)


def test_a_refused_file_fails_its_job_with_the_line_in_the_worker(worker, lead, project):
    good = {
        "id": "c1",
        "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    }
    bad = dict(good, id="c2", metadata={"note": "a\u0000b"})
    data = (json.dumps(good) + "\n" + json.dumps(bad) + "\n").encode()
    client = APIClient()
    client.force_authenticate(lead)
    response = client.post(
        f"/api/v1/projects/{project.slug}/imports/",
        {"file": SimpleUploadedFile("nul.jsonl", data)},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    body = _finished(client, response.json()["status_url"], worker)
    assert body["state"] == "failed", body
    assert body["errors"][0]["text"].startswith("nul.jsonl, line 2: metadata.note: holds a NUL")
    assert not Conversation.objects.filter(project=project).exists()


@pytest.mark.usefixtures("conv")
def test_a_judgment_import_job_is_run_by_the_worker(worker, lead, project):
    client = APIClient()
    client.force_authenticate(lead)
    response = client.post(
        f"/api/v1/projects/{project.slug}/judgments/import/",
        {"file": SimpleUploadedFile("j.jsonl", json.dumps(SCORE).encode() + b"\n")},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    body = _finished(client, response.json()["status_url"], worker)
    assert (body["state"], body["imported"]) == ("succeeded", 1), body
    assert Judgment.objects.filter(item__project=project).count() == 1
