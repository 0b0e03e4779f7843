"""Every kind of job ends failed, with a sentence for a person, whatever its work raises.

A table: each job kind (its service, the call inside it that is made to fail) crossed with the
exceptions real inputs and real machines raise (4 kinds x 10 exceptions) (conversations/jobs.py). The exports app is the
highest one, so the table can name every kind of job from here.
"""

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DataError, OperationalError

from conversations.jobs import failure_message
from conversations.models import ImportJob, JobState
from conversations.services.import_jobs import import_job_create, import_job_run
from exports.models import ExportJob
from exports.services import export_job_create, export_job_run
from ratings.models import JudgmentImportJob, QualityRun
from ratings.services.judgment_import.jobs import (
    judgment_import_job_create,
    judgment_import_job_run,
)
from ratings.services.quality import quality_compute

pytestmark = pytest.mark.django_db

RECORD = b'{"id": "c1", "messages": [{"role": "user", "content": "hi"}]}\n'

# (exception, words the job's failure must hold)
EXCEPTIONS = [
    (DataError("A string literal cannot contain NUL (0x00) characters."), "NUL"),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (EOFError("Compressed file ended before the end-of-stream marker"), "truncated"),
    (zlib.error("Error -3 while decompressing data"), "not a valid compressed file"),
    (UnicodeDecodeError("utf-8", b"\xed\xa0\x80", 0, 1, "invalid continuation byte"), "UTF-8"),
    (ValueError("Exceeds the limit (4300 digits) for integer string conversion"), "digits"),
    (MemoryError(), "out of memory"),
    (OperationalError("server closed the connection unexpectedly"), "connection was lost"),
    (OSError(28, "No space left on device"), "could not be read or written"),
    (KeyError("speaker"), "unexpected error (KeyError"),
]


@dataclass
class Kind:
    name: str
    target: str  # the call inside the service that the test makes raise
    model: type


def start_import(project, lead):
    upload = SimpleUploadedFile("t.jsonl", RECORD)
    job = import_job_create(project=project, user=lead, upload=upload)
    return import_job_run(job_id=job.pk)


def start_export(project, lead):
    job = export_job_create(project=project, user=lead, fmt="trl")
    job.work_dir().mkdir(parents=True)
    (job.work_dir() / ".half-written.jsonl.partial").write_bytes(b"x" * 1000)
    return export_job_run(job_id=job.pk)


def start_judgment_import(project, lead):
    upload = SimpleUploadedFile("j.jsonl", b"{}\n")
    job = judgment_import_job_create(project=project, user=lead, upload=upload)
    return judgment_import_job_run(job_id=job.pk)


def start_quality(project, lead):
    with pytest.raises(Exception):  # noqa: B017 - a run re-raises so that Celery logs it
        quality_compute(project_id=project.pk, trigger="manual", force=True)
    return QualityRun.objects.get(project=project)


KINDS = {
    "import": (
        Kind("import", "conversations.services.import_jobs.transcript_import", ImportJob),
        start_import,
    ),
    "judgment import": (
        Kind(
            "judgment import",
            "ratings.services.judgment_import.jobs.judgment_import",
            JudgmentImportJob,
        ),
        start_judgment_import,
    ),
    "export": (Kind("export", "exports.services.run_export", ExportJob), start_export),
    "quality": (Kind("quality", "ratings.services.quality.runs.load", QualityRun), start_quality),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    ("exc", "words"), EXCEPTIONS, ids=[type(e).__name__ for e, _ in EXCEPTIONS]
)
def test_any_exception_in_a_job_ends_it_failed_with_a_message(
    kind, exc, words, project, lead, monkeypatch
):
    spec, start = KINDS[kind]

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(spec.target, fail)
    job = start(project, lead)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    message = getattr(job, spec.model.error_field)
    assert words in message, message
    assert job.finished_at is not None
    if kind == "export":
        assert not job.work_dir().exists(), "the partial file was left behind"


def test_a_refusal_written_for_people_is_kept_as_it_is():
    assert failure_message(ValueError("KTO from scores needs a Likert criterion")) == (
        "KTO from scores needs a Likert criterion"
    )


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("nul.jsonl", b'{"id": "c1", "messages": [{"role": "user", "content": "a\\u0000b"}]}\n'),
        ("cut.jsonl.gz", gzip.compress(RECORD * 200)[:-30]),
        ("deep.jsonl", b'{"id": "c1", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"),
    ],
)
def test_hostile_uploads_end_the_import_failed_with_a_message(name, data, project, lead):
    """Real inputs that used to leave the job running for ever (issue 13)."""
    job = import_job_create(project=project, user=lead, upload=SimpleUploadedFile(name, data))
    job = import_job_run(job_id=job.pk)
    assert job.state == JobState.FAILED
    assert job.failure or job.errors
    assert "unexpected error" not in job.failure


def test_a_job_that_is_not_queued_is_not_run_again(project, lead):
    job = export_job_create(project=project, user=lead, fmt="trl")
    ExportJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING)  # another worker has it
    assert export_job_run(job_id=job.pk).state == JobState.RUNNING
    ExportJob.objects.filter(pk=job.pk).update(state=JobState.FAILED, error="x")
    assert export_job_run(job_id=job.pk).error == "x"
    assert not Path(job.work_dir()).exists()
