"""Hostile input: every case is refused with a message that names the line, and nothing is
written, by the command, the API and the upload page alike (docs/formats.md, "Limits").

One table, ``CASES``, for transcripts; the judgment import's cases are at the end.
"""

import gzip
import json
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from conversations.importers.records import RecordError
from conversations.importers.safe_json import byte_depth, loads
from conversations.models import Conversation, ImportJob, JobState
from ratings.models import Judgment
from tests.ratings.test_judgment_import import SCORE, conv  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

DEEP = 100_000


def record(i: int, content: str = "fine", metadata: str = "{}") -> bytes:
    """A native record, as text, so that the hostile part is written as it is."""
    return (
        f'{{"id": "c{i}", "metadata": {metadata}, "messages": [{{"role": "user", "content": '
        f'"Q{i}"}}, {{"role": "assistant", "content": "{content}"}}]}}\n'
    ).encode()


GOOD = record(1)  # line 1 of most cases: a valid record, so that "nothing written" means it


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


def truncated_gz() -> bytes:
    data = gz(b"".join(record(i, content=f"answer {i} " * 20) for i in range(200)))
    return data[: len(data) // 2]


# (name, file name, bytes, line named, words the message holds, settings)
CASES = [
    ("nul-in-text", "f.jsonl", GOOD + record(2, content="a\\u0000b"), 2, "NUL", {}),
    ("nul-in-metadata", "f.jsonl", GOOD + record(2, metadata='{"k": "\\u0000"}'), 2, "NUL", {}),
    ("lone-surrogate", "f.jsonl", GOOD + record(2, content="\\ud800"), 2, "surrogate", {}),
    ("deep-first-record", "f.jsonl", b"[" * DEEP + b"]" * DEEP + b"\n" + GOOD, 1, "nested", {}),
    (
        "deep-metadata",
        "f.jsonl",
        GOOD + record(2, metadata='{"a": ' + "[" * DEEP + "]" * DEEP + "}"),
        2,
        "nested",
        {},
    ),
    (
        "deep-within-orjson-limit",
        "f.jsonl",
        GOOD + record(2, metadata='{"a": ' + "[" * 500 + "]" * 500 + "}"),
        2,
        "nested",
        {},
    ),
    (
        "huge-integer",
        "f.jsonl",
        GOOD + record(2, metadata='{"n": ' + "9" * 5000 + "}"),
        2,
        "digits",
        {},
    ),
    ("nan", "f.jsonl", GOOD + record(2, metadata='{"n": NaN}'), 2, "NaN", {}),
    ("truncated-gzip", "f.jsonl.gz", truncated_gz(), None, "truncated", {}),
    ("blank-lines-gzip", "f.jsonl.gz", gz(GOOD + b"\n" * (64 << 20)), 1002, "blank lines", {}),
    (
        "decompressed-size",
        "f.jsonl.gz",
        gz(b"".join(record(i) for i in range(100))),
        None,
        "decompresses to more than",
        {"IMPORT_MAX_DECOMPRESSED_BYTES": 2000},
    ),
    (
        "csv-nul",
        "f.csv",
        b"conversation_id,turn_index,role,content\nc1,0,user,Q\nc1,1,assistant,A\x00B\n",
        3,
        "NUL",
        {},
    ),
    (
        "csv-blank-lines-gzip",
        "f.csv.gz",
        gz(b"conversation_id,turn_index,role,content\nc1,0,user,Q\n" + b"\n" * (64 << 20)),
        1003,
        "blank lines",
        {},
    ),
    (
        "csv-truncated-gzip",
        "f.csv.gz",
        gz(
            b"conversation_id,turn_index,role,content\n"
            + b"".join(b"c%d,0,user,Q%d\nc%d,1,assistant,A%d\n" % (i, i, i, i) for i in range(3000))
        )[:4000],
        None,
        "truncated",
        {},
    ),
    (
        "csv-deep-metadata",
        "f.csv",
        b"conversation_id,turn_index,role,content,metadata\nc1,0,user,Q,\nc1,1,assistant,A,"
        + b"[" * 60_000  # (the csv module's field limit is 128 KiB)
        + b"]" * 60_000
        + b"\n",
        3,
        "nested",
        {},
    ),
]
ENTRIES = ["command", "api", "page"]


def _names_the_line(text: str, line: int | None) -> None:
    if line is None:
        assert "line " in text, text
    else:
        assert f"line {line}" in text or f"row {line}" in text, text


def _via_command(tmp_path: Path, project, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CommandError) as exc:
        call_command("import_transcripts", path, project=project.slug, no_progress=True)
    return str(exc.value)


def _job_text(job: ImportJob) -> str:
    assert job.state == JobState.FAILED, (job.state, job.failure, job.errors)
    return " ".join([job.failure, *(e["text"] for e in job.errors)])


def _via_api(project, lead, name: str, data: bytes, capture) -> str:
    client = APIClient()
    client.force_authenticate(lead)
    with capture(execute=True):
        response = client.post(
            f"/api/v1/projects/{project.slug}/imports/",
            {"file": SimpleUploadedFile(name, data)},
            format="multipart",
        )
    assert response.status_code == 202, response.content
    body = client.get(response.json()["status_url"]).json()
    assert body["state"] == "failed", body
    return " ".join([body["failure"], *(e["text"] for e in body["errors"])])


def _via_page(client, project, lead, name: str, data: bytes, capture) -> str:
    client.force_login(lead)
    with capture(execute=True):
        response = client.post(
            f"/projects/{project.slug}/import/", {"file": SimpleUploadedFile(name, data)}
        )
    assert response.status_code == 302, response.content[:2000]
    page = client.get(response["Location"]).content.decode()
    assert "failed" in page
    return page


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize(
    ("name", "data", "line", "words", "overrides"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_hostile_input_is_refused_with_its_line_and_nothing_is_written(
    entry,
    name,
    data,
    line,
    words,
    overrides,
    project,
    lead,
    tmp_path,
    client,
    settings,
    django_capture_on_commit_callbacks,
):
    for key, value in overrides.items():
        setattr(settings, key, value)
    started = time.monotonic()
    if entry == "command":
        text = _via_command(tmp_path, project, name, data)
    elif entry == "api":
        text = _via_api(project, lead, name, data, django_capture_on_commit_callbacks)
    else:
        text = _via_page(client, project, lead, name, data, django_capture_on_commit_callbacks)
    assert time.monotonic() - started < 15  # refused quickly, not after reading it all
    assert words in text, text
    _names_the_line(text, line)
    assert "Traceback" not in text
    if entry != "command":  # the web says what to choose on the page, not a command option
        assert "--format" not in text
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("entry", ENTRIES)
def test_skipping_invalid_records_does_not_import_part_of_a_damaged_file(
    entry, project, lead, tmp_path, client, django_capture_on_commit_callbacks
):
    """A truncated file is refused as a whole, even when invalid records are skipped."""
    data = truncated_gz()
    if entry == "command":
        path = tmp_path / "f.jsonl.gz"
        path.write_bytes(data)
        with pytest.raises(CommandError, match="truncated"):
            call_command(
                "import_transcripts",
                path,
                project=project.slug,
                no_progress=True,
                skip_invalid=True,
            )
    else:
        api = APIClient()
        api.force_authenticate(lead)
        with django_capture_on_commit_callbacks(execute=True):
            api.post(
                f"/api/v1/projects/{project.slug}/imports/",
                {"file": SimpleUploadedFile("f.jsonl.gz", data), "skip_invalid": "true"},
                format="multipart",
            )
        assert "truncated" in _job_text(ImportJob.objects.get())
    assert not Conversation.objects.exists()


def test_the_format_advice_on_the_page_names_no_command_option(
    project, lead, client, django_capture_on_commit_callbacks
):
    text = _via_page(
        client, project, lead, "f.jsonl", b'{"what": 1}\n', django_capture_on_commit_callbacks
    )
    assert "name its format" in text and "--format" not in text
    assert 'data-testid="format-advice"' in text and "<em>Format</em> field" in text


def test_an_upload_over_the_limit_is_refused_by_the_api_and_the_page(
    project, lead, client, settings
):
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    api = APIClient()
    api.force_authenticate(lead)
    data = GOOD * 10
    response = api.post(
        f"/api/v1/projects/{project.slug}/imports/",
        {"file": SimpleUploadedFile("f.jsonl", data)},
        format="multipart",
    )
    assert response.status_code == 413
    assert "uploads are limited to 100" in response.json()["file"][0]
    client.force_login(lead)
    page = client.post(
        f"/projects/{project.slug}/import/", {"file": SimpleUploadedFile("f.jsonl", data)}
    )
    assert page.status_code == 200
    assert "uploads are limited to 100" in page.content.decode()
    assert not ImportJob.objects.exists() and not Conversation.objects.exists()


# The reading itself, without the database.


@pytest.mark.parametrize("depth", [200, 201, 1023, 1025, DEEP])
def test_depth_is_measured_without_recursion_on_both_paths(settings, depth):
    settings.IMPORT_MAX_JSON_DEPTH = 200
    text = b"[" * depth + b"]" * depth
    if depth <= 200:
        assert loads(text) is not None
    else:
        with pytest.raises(RecordError, match="nested more than 200"):
            loads(text)


def test_byte_depth_leaves_strings_out():
    assert byte_depth(b'{"a": "[[[[\\"[[", "b": [[1], {"c": []}]}') == 4


def test_a_backslash_before_u0000_is_text_not_a_nul():
    assert loads(b'{"a": "\\\\u0000"}') == {"a": "\\u0000"}


def test_what_the_fast_path_accepts_is_unchanged():
    """Long conversations (more brackets than the depth limit) are walked and accepted."""
    messages = [{"role": "user", "content": f"[{i}] {{x}}"} for i in range(400)]
    value = {"messages": messages, "metadata": {"a": [[["deep enough"]]]}}
    assert loads(json.dumps(value).encode()) == value
    assert loads(json.dumps(value, ensure_ascii=False).encode()) == value


def test_numbers_beyond_a_double_are_refused_on_both_paths():
    assert loads(b'{"n": ' + b"9" * 308 + b"}")["n"] == pytest.approx(1e308)
    for extra in (b"", b', "big": ' + b"1" * 30):  # (orjson reads 30 digits as a double)
        with pytest.raises(RecordError, match="309 digits"):
            loads(b'{"n": ' + b"9" * 309 + extra + b"}")
    with pytest.raises(RecordError, match="5,000 digits"):
        loads(b'{"n": ' + b"9" * 5000 + b"}")


# The judgment import: the same reading, through its command and its API job.


def judgment_line(**changes) -> bytes:
    return json.dumps({**SCORE, **changes}).encode() + b"\n"


JUDGMENT_CASES = [
    ("nul-in-rationale", judgment_line(id="j2", rationale="a\u0000b"), 2, "NUL"),
    (
        "deep-scores",
        judgment_line(id="j2").replace(
            b'"scores": {', b'"scores": {"x": ' + b"[" * DEEP + b"]" * DEEP + b", ", 1
        ),
        2,
        "nested",
    ),
    ("deep-record", b"[" * DEEP + b"]" * DEEP + b"\n", 2, "nested"),
    ("lone-surrogate", judgment_line(id="j2").replace(b"Right", b"\\udfff", 1), 2, "surrogate"),
]


@pytest.mark.usefixtures("conv")
@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize(
    ("data", "line", "words"), [pytest.param(*c[1:], id=c[0]) for c in JUDGMENT_CASES]
)
def test_hostile_judgment_files_are_refused_with_their_line(
    entry, data, line, words, project, lead, tmp_path, client, django_capture_on_commit_callbacks
):
    data = judgment_line() + data  # line 1 is valid: nothing written means it too
    if entry == "command":
        path = tmp_path / "j.jsonl"
        path.write_bytes(data)
        with pytest.raises(CommandError) as exc:
            call_command("import_judgments", path, project=project.slug, no_progress=True)
        text = str(exc.value)
    elif entry == "page":
        client.force_login(lead)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/projects/{project.slug}/judgments/import/",
                {"file": SimpleUploadedFile("j.jsonl", data)},
            )
        assert response.status_code == 302, response.content[:2000]
        text = client.get(response["Location"]).content.decode()
        assert 'data-testid="job-state">failed<' in text
    else:
        client = APIClient()
        client.force_authenticate(lead)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/api/v1/projects/{project.slug}/judgments/import/",
                {"file": SimpleUploadedFile("j.jsonl", data)},
                format="multipart",
            )
        assert response.status_code == 202, response.content
        body = client.get(response.json()["status_url"]).json()
        assert body["state"] == "failed", body
        text = " ".join([body["failure"], *(e["text"] for e in body["errors"])])
    assert words in text and f"line {line}" in text, text
    assert not Judgment.objects.exists()


def test_the_command_names_its_format_option_when_the_format_is_unknown(project, tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"what": 1}\n')
    with pytest.raises(CommandError, match="name the format with --format"):
        call_command("import_transcripts", path, project=project.slug, no_progress=True)
