"""Privacy on every path: an export made with real rater names (``reveal_raters``) is seen
only by those who may see names (list, status, download; page and API); a lead reads the
names of the project's own people only (the rater page and its API twin)."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import Membership, Role
from exports.models import ExportJob
from exports.selectors import export_job_list
from exports.services import export_file_path
from ratings.models import DriftFlag
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def jobs(exportable, lead, django_capture_on_commit_callbacks):
    """Two finished exports by the lead: one with real rater names, one pseudonymous."""
    project, _, _ = exportable
    made = {}
    for key, reveal in (("named", True), ("pseudonymous", False)):
        with django_capture_on_commit_callbacks(execute=True):
            response = api(lead).post(
                f"/api/v1/projects/{project.slug}/exports/",
                {"format": "rubric-scores", "options": {"reveal_raters": reveal}},
                format="json",
            )
        assert response.status_code == 202
        made[key] = ExportJob.objects.get(pk=response.json()["id"])
        assert made[key].state == "succeeded"
    assert made["named"].manifest["rater_identities"] == "revealed"
    return project, made


def data_file(job: ExportJob) -> str:
    return next(f["name"] for f in job.files if f["name"].endswith(".jsonl"))


# ---------------------------------------------------------------------------
# Exports with real names
# ---------------------------------------------------------------------------


def test_api_list_hides_a_named_export_from_consumers(jobs, member, lead):
    project, made = jobs
    url = f"/api/v1/projects/{project.slug}/exports/"
    seen = {j["id"] for j in api(member(Role.CONSUMER)).get(url).json()}
    assert seen == {made["pseudonymous"].pk}
    assert {j["id"] for j in api(lead).get(url).json()} == {j.pk for j in made.values()}


def test_api_status_of_a_named_export_is_404_for_consumers(jobs, member, lead):
    _, made = jobs
    consumer = api(member(Role.CONSUMER))
    assert consumer.get(f"/api/v1/exports/{made['named'].pk}/").status_code == 404
    assert consumer.get(f"/api/v1/exports/{made['pseudonymous'].pk}/").status_code == 200
    assert api(lead).get(f"/api/v1/exports/{made['named'].pk}/").status_code == 200


def test_api_download_of_a_named_export_is_404_for_consumers(jobs, member, lead):
    _, made = jobs
    job = made["named"]
    url = f"/api/v1/exports/{job.pk}/files/{data_file(job)}"
    assert api(member(Role.CONSUMER)).get(url).status_code == 404
    response = api(lead).get(url)
    assert response.status_code == 200
    assert b"r0" in b"".join(response.streaming_content)  # the real names are in it


def test_page_lists_no_named_export_for_consumers(client, jobs, member, lead):
    project, made = jobs
    named, other = made["named"], made["pseudonymous"]
    client.force_login(member(Role.CONSUMER))
    html = client.get(f"/projects/{project.slug}/exports/").content.decode()
    assert f"/exports/{other.pk}/files/" in html
    assert f"/exports/{named.pk}/files/" not in html
    client.force_login(lead)
    html = client.get(f"/projects/{project.slug}/exports/").content.decode()
    assert f"/exports/{named.pk}/files/" in html


def test_page_download_of_a_named_export_is_404_for_consumers(client, jobs, member, lead):
    _, made = jobs
    job = made["named"]
    url = f"/exports/{job.pk}/files/{data_file(job)}"
    client.force_login(member(Role.CONSUMER))
    assert client.get(url).status_code == 404
    client.force_login(lead)
    assert client.get(url).status_code == 200


def test_the_service_refuses_a_named_file_to_a_consumer(jobs, member, lead):
    _, made = jobs
    job = made["named"]
    with pytest.raises(PermissionDenied):
        export_file_path(job=job, user=member(Role.CONSUMER), name=data_file(job))
    assert export_file_path(job=job, user=lead, name=data_file(job)).exists()


def test_consumers_see_named_exports_where_the_project_shows_names(jobs, member):
    project, made = jobs
    project.show_rater_identities = True
    project.save(update_fields=["show_rater_identities"])
    consumer = member(Role.CONSUMER)
    assert set(export_job_list(user=consumer).values_list("pk", flat=True)) == {
        j.pk for j in made.values()
    }
    assert api(consumer).get(f"/api/v1/exports/{made['named'].pk}/").status_code == 200


def test_a_truthy_non_boolean_option_counts_as_naming(jobs, member):
    """The rule is spelt positively: only an option that is false (or absent) is shown."""
    _, made = jobs
    ExportJob.objects.filter(pk=made["named"].pk).update(
        options={**made["named"].options, "reveal_raters": 1}
    )
    visible = set(export_job_list(user=member(Role.CONSUMER)).values_list("pk", flat=True))
    assert visible == {made["pseudonymous"].pk}


# ---------------------------------------------------------------------------
# User lookups on the rater page: the project's people only
# ---------------------------------------------------------------------------


@pytest.fixture
def outsider():
    """A user of another project, whose name a lead of this project must not read."""
    user = UserFactory(username="secret-outsider")
    Membership.objects.create(project=ProjectFactory(), user=user, role=Role.EVALUATOR)
    return user


def test_rater_page_is_404_for_a_user_outside_the_project(client, project, lead, outsider):
    client.force_login(lead)
    response = client.get(f"/projects/{project.slug}/quality/raters/{outsider.pk}/")
    assert response.status_code == 404
    assert "secret-outsider" not in response.content.decode()
    post = client.post(
        f"/projects/{project.slug}/quality/raters/{outsider.pk}/",
        {"flag": 1, "state": "acknowledged"},
    )
    assert post.status_code == 404


def test_rater_page_shows_members_and_former_members_with_quality_data(
    client, project, lead, member
):
    rater = member(Role.EVALUATOR, username="current-rater")
    client.force_login(lead)
    response = client.get(f"/projects/{project.slug}/quality/raters/{rater.pk}/")
    assert response.status_code == 200 and "current-rater" in response.content.decode()
    former = member(Role.EVALUATOR, username="former-rater")
    now = timezone.now()
    DriftFlag.objects.create(
        project=project,
        rater=former,
        detector="agreement",
        window_kind="day",
        window_start=now - timedelta(days=1),
        window_end=now,
    )
    Membership.objects.filter(project=project, user=former).delete()
    response = client.get(f"/projects/{project.slug}/quality/raters/{former.pk}/")
    assert response.status_code == 200 and "former-rater" in response.content.decode()


def test_rater_trend_api_is_404_for_a_user_outside_the_project(project, lead, member, outsider):
    rater = member(Role.EVALUATOR)
    client = api(lead)
    url = f"/api/v1/projects/{project.slug}/quality/raters/{{}}/trend/"
    assert client.get(url.format(outsider.pk)).status_code == 404
    assert client.get(url.format(rater.pk)).status_code == 200
    assert client.get(url.format(10**9)).status_code == 404
