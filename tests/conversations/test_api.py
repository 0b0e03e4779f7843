"""The import API and pages: the happy path with eager Celery, and every refusal."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from conversations.models import Conversation, ImportJob, Role
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

GOOD = json.dumps(
    {
        "id": "a",
        "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    }
).encode()


def upload(client, project, data=GOOD, name="t.jsonl", **fields):
    return client.post(
        f"/api/v1/projects/{project.slug}/imports/",
        {"file": SimpleUploadedFile(name, data), **fields},
        format="multipart",
    )


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_lead_uploads_and_the_job_is_queued_after_commit(
    lead, project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = upload(api_as(lead), project)
    assert response.status_code == 202
    assert len(callbacks) == 1
    body = response.json()
    assert response["Location"] == body["status_url"]
    status = api_as(lead).get(body["status_url"]).json()
    assert (status["state"], status["imported"], status["format"]) == ("succeeded", 1, "native")
    assert Conversation.objects.filter(project=project).count() == 1


def test_token_auth_works(lead, project, django_capture_on_commit_callbacks):
    token = Token.objects.create(user=lead)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(client, project).status_code == 202


def test_failed_job_reports_errors_and_imports_nothing(
    lead, project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api_as(lead), project, GOOD + b"\n{bad json\n")
    status = api_as(lead).get(response.json()["status_url"]).json()
    assert status["state"] == "failed"
    assert status["errors"][0]["line"] == 2
    assert "t.jsonl, line 2: malformed JSON" in status["errors"][0]["text"]
    assert Conversation.objects.count() == 0


def test_skip_invalid_job_offers_the_rejects_file(
    lead, project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api_as(lead), project, GOOD + b"\n{bad json\n", skip_invalid=True)
    status = api_as(lead).get(response.json()["status_url"]).json()
    assert (status["state"], status["imported"], status["rejected"]) == ("succeeded", 1, 1)
    rejects = api_as(lead).get(status["rejects_url"])
    assert json.loads(b"".join(rejects.streaming_content))["record"] == "{bad json"


@pytest.mark.parametrize("role", [Role.EVALUATOR, Role.SME, Role.CONSUMER])
def test_only_leads_may_import(member, project, role):
    response = upload(api_as(member(role)), project)
    assert response.status_code == 403
    assert "needs the role lead" in response.json()["detail"]
    assert ImportJob.objects.count() == 0


def test_non_members_do_not_see_the_project_or_its_jobs(
    lead, project, django_capture_on_commit_callbacks
):
    outsider = UserFactory()
    assert upload(api_as(outsider), project).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        job_url = upload(api_as(lead), project).json()["status_url"]
    assert api_as(outsider).get(job_url).status_code == 404
    assert api_as(outsider).get("/api/v1/projects/").json() == []


def test_evaluator_cannot_read_import_jobs(
    member, lead, project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job_url = upload(api_as(lead), project).json()["status_url"]
    assert api_as(member(Role.EVALUATOR)).get(job_url).status_code == 404


def test_anonymous_is_refused(project):
    assert upload(APIClient(), project).status_code in (401, 403)


def test_bad_upload_fields_are_refused(lead, project):
    client = api_as(lead)
    response = client.post(f"/api/v1/projects/{project.slug}/imports/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()
    assert upload(client, project, format="yaml").status_code == 400


def test_project_list_shows_my_role(member, project):
    ProjectFactory()  # another project, not mine
    user = member(Role.SME)
    assert [(p["slug"], p["role"]) for p in api_as(user).get("/api/v1/projects/").json()] == [
        (project.slug, "sme")
    ]


def test_upload_page_imports_and_shows_the_job(
    client, lead, project, django_capture_on_commit_callbacks
):
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/import/")
    assert page.status_code == 200 and b"Upload and import" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/projects/{project.slug}/import/", {"file": SimpleUploadedFile("t.jsonl", GOOD)}
        )
    assert response.status_code == 302
    detail = client.get(response["Location"])
    assert b"succeeded" in detail.content


def test_upload_page_refuses_non_leads(client, member, project):
    client.force_login(member(Role.EVALUATOR))
    assert client.get(f"/projects/{project.slug}/import/").status_code == 403
    client.force_login(UserFactory())
    assert client.get(f"/projects/{project.slug}/import/").status_code == 404


def test_openapi_schema_is_served(client, lead):
    client.force_login(lead)
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200 and b"/api/v1/projects/{slug}/imports/" in response.content
