"""A broker that stops: asking for a job answers 503 "try again" and leaves the job failed.

A private redis-server on a spare port is the broker; the test stops it between two requests
(the app keeps its pooled connection to it, as a web process does). Every kind of job is asked
for through the API, and the web pages answer with a page that says what to do.
"""

import socket
import subprocess
import time

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from config.celery import app as celery_app
from conversations.jobs import NOT_QUEUED, TRY_AGAIN
from conversations.models import ImportJob, JobState, Role
from exports.models import ExportJob
from ratings.models import JudgmentImportJob

pytestmark = [pytest.mark.django_db(transaction=True)]

TRANSCRIPT = b'{"id": "b1", "messages": [{"role": "user", "content": "hi"}, '
TRANSCRIPT += b'{"role": "assistant", "content": "hello"}]}\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def use_broker(url: str) -> None:
    """Point the app at ``url``. Celery keeps one connection pool and one producer pool per
    app, made on first use; a new URL needs new ones."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


class PrivateBroker:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def queued(self) -> int:
        """Messages waiting in the broker (the default queue)."""
        return redis.Redis(port=self.port).llen(celery_app.conf.task_default_queue)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def broker():
    eager, url = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.task_always_eager = False
    server = PrivateBroker()
    use_broker(server.url)
    yield server
    server.stop()
    celery_app.conf.task_always_eager = eager
    use_broker(url)


def ask_for_every_job(client: APIClient, slug: str) -> dict:
    """Ask for each kind of job through the API; the answers by kind."""
    return {
        "import": client.post(
            f"/api/v1/projects/{slug}/imports/",
            {"file": SimpleUploadedFile("t.jsonl", TRANSCRIPT)},
            format="multipart",
        ),
        "judgment import": client.post(
            f"/api/v1/projects/{slug}/judgments/import/",
            {"file": SimpleUploadedFile("j.jsonl", b"{}\n")},
            format="multipart",
        ),
        "export": client.post(
            f"/api/v1/projects/{slug}/exports/", {"format": "trl"}, format="json"
        ),
        "quality run": client.post(f"/api/v1/projects/{slug}/quality/run/"),
    }


JOB_MODELS = {"import": ImportJob, "judgment import": JudgmentImportJob, "export": ExportJob}


def test_api_answers_503_and_fails_the_job_when_the_broker_stops(broker, project, member):
    client = APIClient()
    client.force_authenticate(member(Role.LEAD))
    answers = ask_for_every_job(client, project.slug)
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 202)
    assert broker.queued() == 4

    broker.stop()
    started = time.monotonic()
    answers = ask_for_every_job(client, project.slug)
    took = time.monotonic() - started
    for kind, response in answers.items():
        assert response.status_code == 503, (kind, response.content)
        assert response.json()["detail"] == TRY_AGAIN
        assert "try again" in TRY_AGAIN
        assert response["Retry-After"] == "60"
        if kind in JOB_MODELS:
            job = JOB_MODELS[kind].objects.get(pk=response.json()["job_id"])
            assert job.state == JobState.FAILED, kind
            assert getattr(job, job.error_field) == NOT_QUEUED
    assert took < 20, f"four refusals took {took:.1f} s"
    # nothing is left queued for ever: the first jobs wait in the (stopped) broker's queue,
    # the second ones are failed
    for model in JOB_MODELS.values():
        states = sorted(model.objects.values_list("state", flat=True))
        assert states == [JobState.FAILED, JobState.QUEUED]


def test_web_pages_answer_503_with_a_readable_page_when_the_broker_is_down(broker, project, member):
    client = Client()
    client.force_login(member(Role.LEAD))
    broker.stop()
    upload = client.post(
        f"/projects/{project.slug}/import/",
        {"file": SimpleUploadedFile("t.jsonl", TRANSCRIPT), "format": ""},
    )
    assert upload.status_code == 503
    assert TRY_AGAIN in upload.content.decode()
    assert ImportJob.objects.get().state == JobState.FAILED
    quality = client.post(f"/projects/{project.slug}/quality/")
    assert quality.status_code == 503
    assert TRY_AGAIN in quality.content.decode()
