"""The management commands and the refusal to run unsafe production settings."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conversations.models import Conversation, Membership, Project
from tests.conftest import database_url

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text: str, name="t.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = json.dumps(
    {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
)


def test_import_command_reports_a_summary(tmp_path):
    out = StringIO()
    call_command(
        "import_transcripts",
        write(tmp_path, GOOD + "\n"),
        project="new",
        create_project=True,
        no_progress=True,
        stdout=out,
    )
    assert "imported 1, duplicates 0, rejected 0" in out.getvalue()
    assert Project.objects.get(slug="new").conversations.count() == 1


def test_import_command_refuses_unknown_project(tmp_path):
    with pytest.raises(
        CommandError, match="unknown project 'nope'; create it first or pass --create-project"
    ):
        call_command("import_transcripts", write(tmp_path, GOOD), project="nope", no_progress=True)


def test_import_command_fails_on_bad_input_and_skip_invalid_writes_rejects(tmp_path, project):
    path = write(tmp_path, GOOD + "\n[1, 2]\n")
    with pytest.raises(
        CommandError, match=r"t.jsonl, line 2: record: expected an object, got list"
    ):
        call_command("import_transcripts", path, project=project.slug, no_progress=True)
    assert Conversation.objects.count() == 0
    err = StringIO()
    call_command(
        "import_transcripts",
        path,
        project=project.slug,
        skip_invalid=True,
        no_progress=True,
        stdout=StringIO(),
        stderr=err,
    )
    assert Conversation.objects.count() == 1
    rejects = tmp_path / "t.jsonl.rejects.jsonl"
    assert json.loads(rejects.read_text())["line"] == 2
    assert str(rejects) in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_import_command_exits_non_zero_from_the_shell(tmp_path):
    path = write(tmp_path, "{oops\n")
    test_db_url = database_url()
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "import_transcripts",
            str(path),
            "--project",
            "shell",
            "--create-project",
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(
            os.environ, DJANGO_SETTINGS_MODULE="config.settings_test", TEST_DATABASE_URL=test_db_url
        ),
    )
    assert result.returncode != 0
    assert "line 1: malformed JSON" in result.stderr


def test_load_demo_is_idempotent(django_capture_on_commit_callbacks):
    from django.contrib.auth import get_user_model

    from exports.services import export_job_create
    from ratings.models import Item, Judgment

    first = StringIO()
    call_command("load_demo", force=True, stdout=first)
    assert "as 754 external pairwise judgments" in first.getvalue()
    count = Conversation.objects.count()
    out = StringIO()
    call_command("load_demo", force=True, stdout=out)
    assert count == Conversation.objects.count() > 200
    assert "rater1" in out.getvalue() and "demo-rater1" in out.getvalue()
    assert "external pairwise judgments" not in out.getvalue()
    assert Item.objects.filter(kind="pairwise").count() > 200  # ranked siblings give pairs
    assert Judgment.objects.filter(is_external=True).count() == 754
    # raters still have pairwise items to do (tests/test_demo.py: every role finds work),
    # and a consumer can export at once
    assert Item.objects.filter(kind="pairwise", n_done=0).count() > 200
    consumer = get_user_model().objects.get(username="consumer")
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(
            project=Conversation.objects.first().project, user=consumer, fmt="trl"
        )
    job.refresh_from_db()
    assert job.state == "succeeded" and job.rows_written > 700
    assert set(Membership.objects.values_list("role", flat=True)) == {
        "lead",
        "evaluator",
        "sme",
        "consumer",
    }


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "example.com"},
            "DJANGO_SECRET_KEY is unset or still the development key",
        ),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50}, "DJANGO_ALLOWED_HOSTS is empty"),
    ],
)
def test_production_mode_refuses_development_defaults(env, expected):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_production_mode_starts_with_safe_settings():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "CRITICAL"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **clean,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "k" * 60,
            "DJANGO_ALLOWED_HOSTS": "rate.example.com",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        },
    )
    assert result.returncode == 0, result.stderr
