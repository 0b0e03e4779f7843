"""Export jobs (API and page), downloads, permissions, the command, and loading every format
with Hugging Face datasets."""

import json
import os
from datetime import datetime, time, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import Role
from exports.models import ExportJob
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_consumer_exports_through_the_api_and_downloads(
    exportable, member, django_capture_on_commit_callbacks
):
    project, _, _ = exportable
    consumer = member(Role.CONSUMER)
    client = api(consumer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/projects/{project.slug}/exports/",
            {"format": "trl", "file_type": "jsonl", "options": {"test_fraction": 0.5, "seed": 3}},
            format="json",
        )
    assert response.status_code == 202
    status = client.get(response["Location"]).json()
    assert status["state"] == "succeeded" and status["rows_written"] == 4
    names = [d["name"] for d in status["downloads"]]
    assert any(n.endswith(".manifest.json") for n in names) and any(
        n.endswith(".README.md") for n in names
    )
    data = next(d for d in status["downloads"] if d["name"].endswith(".train.jsonl"))
    body = b"".join(client.get(data["url"]).streaming_content)
    assert len(body.splitlines()) == data["rows"]


@pytest.mark.parametrize("role", [Role.EVALUATOR, Role.SME])
def test_raters_cannot_export(exportable, member, role):
    project, _, _ = exportable
    response = api(member(role)).post(
        f"/api/v1/projects/{project.slug}/exports/", {"format": "trl"}, format="json"
    )
    assert response.status_code == 403
    assert ExportJob.objects.count() == 0


def test_non_members_and_other_projects_see_nothing(
    exportable, lead, django_capture_on_commit_callbacks
):
    project, _, _ = exportable
    with django_capture_on_commit_callbacks(execute=True):
        url = api(lead).post(
            f"/api/v1/projects/{project.slug}/exports/", {"format": "trl"}, format="json"
        )["Location"]
    outsider = api(UserFactory())
    assert outsider.get(url).status_code == 404
    assert (
        outsider.post(
            f"/api/v1/projects/{project.slug}/exports/", {"format": "trl"}, format="json"
        ).status_code
        == 404
    )


def test_only_leads_reveal_rater_names(
    exportable, member, lead, django_capture_on_commit_callbacks
):
    project, _, _ = exportable
    response = api(member(Role.CONSUMER)).post(
        f"/api/v1/projects/{project.slug}/exports/",
        {"format": "rubric-scores", "options": {"reveal_raters": True}},
        format="json",
    )
    assert response.status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        ok = api(lead).post(
            f"/api/v1/projects/{project.slug}/exports/",
            {"format": "rubric-scores", "options": {"reveal_raters": True}},
            format="json",
        )
    job = ExportJob.objects.get(pk=ok.json()["id"])
    assert job.manifest["rater_identities"] == "revealed"


def test_bad_options_are_refused(exportable, lead):
    project, _, _ = exportable
    client = api(lead)
    assert (
        client.post(
            f"/api/v1/projects/{project.slug}/exports/", {"format": "xml"}, format="json"
        ).status_code
        == 400
    )
    bad = client.post(
        f"/api/v1/projects/{project.slug}/exports/",
        {"format": "trl", "options": {"test_fraction": 2}},
        format="json",
    )
    assert bad.status_code == 400 and "test_fraction" in json.dumps(bad.json())
    assert (
        client.post(
            f"/api/v1/projects/{project.slug}/exports/",
            {"format": "trl", "options": {"colour": 1}},
            format="json",
        ).status_code
        == 400
    )


def test_a_failed_job_says_why_and_offers_no_file(
    project, lead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        url = api(lead).post(
            f"/api/v1/projects/{project.slug}/exports/", {"format": "kto"}, format="json"
        )["Location"]
    status = api(lead).get(url).json()
    assert status["state"] == "failed" and "Likert" in status["error"] and status["downloads"] == []


# the exports page form with every option at its default
PAGE_FORM = {
    "format": "trl",
    "file_type": "jsonl",
    "aggregation": "majority",
    "min_raters": 1,
    "min_agreement": 0,
    "both_bad": "drop",
    "include_external": "on",
    "test_fraction": 0,
    "seed": 0,
    "kto_source": "scores",
}


def test_exports_page(client, exportable, member, django_capture_on_commit_callbacks):
    project, _, _ = exportable
    consumer = member(Role.CONSUMER)
    client.force_login(consumer)
    assert client.get(f"/projects/{project.slug}/exports/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/projects/{project.slug}/exports/", {**PAGE_FORM, "format": "openai-dpo"})
    job = ExportJob.objects.get()
    assert job.state == "succeeded"
    page = client.get(f"/projects/{project.slug}/exports/").content.decode()
    assert f"/exports/{job.pk}/files/" in page
    client.force_login(member(Role.EVALUATOR))
    assert client.get(f"/projects/{project.slug}/exports/").status_code == 403


def test_exports_page_filters_by_day_source_and_model(
    client, exportable, member, lead, django_capture_on_commit_callbacks
):
    project, _, _ = exportable  # votes cast yesterday
    client.force_login(member(Role.CONSUMER))
    page = client.get(f"/projects/{project.slug}/exports/").content.decode()
    assert page.count('type="date"') == 2 and 'name="reveal_raters"' not in page
    today = timezone.localdate()
    cases = [
        ({"date_from": today - timedelta(days=2), "date_to": today}, 4),
        ({"date_from": today + timedelta(days=1)}, 0),
        ({"date_to": today - timedelta(days=3)}, 0),
        ({"model": "model-1"}, 4),
        ({"model": "model-9"}, 0),
        ({"source": "hh-rlhf"}, 0),
    ]
    for extra, rows in cases:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/projects/{project.slug}/exports/", {**PAGE_FORM, **extra})
        assert response.status_code == 302, response.content.decode()[:2000]
        job = ExportJob.objects.latest("pk")
        assert (job.state, job.rows_written) == ("succeeded", rows), extra
    filters = ExportJob.objects.order_by("pk").first().options["filters"]
    zone = timezone.get_current_timezone()
    first = datetime.combine(today - timedelta(days=2), time.min, tzinfo=zone)
    last = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
    assert (filters["date_from"], filters["date_to"]) == (first.isoformat(), last.isoformat())
    # the last day before the first: refused, nothing queued
    before = ExportJob.objects.count()
    response = client.post(
        f"/projects/{project.slug}/exports/",
        {**PAGE_FORM, "date_from": today, "date_to": today - timedelta(days=1)},
    )
    assert response.status_code == 200 and "The last day is before the first." in (
        response.content.decode()
    )
    assert ExportJob.objects.count() == before
    # a consumer cannot reveal names by adding the field; a lead sees it
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/projects/{project.slug}/exports/", {**PAGE_FORM, "reveal_raters": "on"})
    assert ExportJob.objects.latest("pk").options["reveal_raters"] is False
    client.force_login(lead)
    assert (
        'name="reveal_raters"' in client.get(f"/projects/{project.slug}/exports/").content.decode()
    )


def test_every_export_field_is_on_the_page_once(client, exportable, lead):
    from exports.views import ExportForm

    grouped = [name for _, names, _ in ExportForm.GROUPS for name in names]
    assert sorted(grouped) == sorted(ExportForm(role="lead").fields)
    project, _, _ = exportable
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/exports/").content.decode()
    for name in grouped:
        assert page.count(f'name="{name}"') == 1, name
    # a refused value opens its group, which is folded otherwise
    response = client.post(f"/projects/{project.slug}/exports/", {**PAGE_FORM, "min_raters": 0})
    html = response.content.decode()
    assert '<details class="form-group" open>\n      <summary>Which votes and pairs' in html
    assert '<details class="form-group">\n      <summary>Split, KTO' in html


def test_export_dataset_command(exportable, tmp_path):
    project, _, _ = exportable
    out = StringIO()
    call_command(
        "export_dataset",
        project=project.slug,
        format="trl",
        out=tmp_path / "pairs.parquet",
        no_progress=True,
        stdout=out,
    )
    assert (tmp_path / "pairs.parquet").exists() and (tmp_path / "pairs.manifest.json").exists()
    assert "4 rows" in out.getvalue()
    with pytest.raises(CommandError, match="file type follows the extension"):
        call_command(
            "export_dataset",
            project=project.slug,
            format="trl",
            out=tmp_path / "pairs.xlsx",
            no_progress=True,
        )
    with pytest.raises(CommandError, match="unknown project"):
        call_command(
            "export_dataset",
            project="nope",
            format="trl",
            out=tmp_path / "p.jsonl",
            no_progress=True,
        )


FORMATS = {
    "trl": ({"prompt", "chosen", "rejected"}, 4),
    "trl-conversational": ({"prompt", "chosen", "rejected"}, 4),
    "trl-implicit": ({"chosen", "rejected", "margin"}, 4),
    "hh-rlhf": ({"chosen", "rejected"}, 4),
    "openai-dpo": ({"input", "preferred_output", "non_preferred_output"}, 4),
    "kto": ({"prompt", "completion", "label"}, 2),
    "rubric-scores": (
        {
            "prompt",
            "response",
            "response_id",
            "model",
            "criterion",
            "score",
            "n_raters",
            "agreement",
            "scores",
            "raters",
            "rubric_versions",
        },
        4,
    ),
}


@pytest.mark.parametrize("ext", ["jsonl", "jsonl.gz", "parquet", "csv"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_loads_with_hugging_face_datasets(exportable, tmp_path, fmt, ext, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    project, _, _ = exportable
    path = tmp_path / f"data.{ext}"
    call_command(
        "export_dataset",
        project=project.slug,
        format=fmt,
        out=path,
        no_progress=True,
        stdout=StringIO(),
    )
    builder = {"parquet": "parquet", "csv": "csv"}.get(ext, "json")
    ds = datasets.load_dataset(
        builder, data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    columns, rows = FORMATS[fmt]
    assert set(ds.column_names) == columns
    assert ds.num_rows == rows
    assert os.environ["HF_DATASETS_OFFLINE"] == "1"
