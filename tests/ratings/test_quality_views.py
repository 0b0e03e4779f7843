"""The quality dashboard, its data (JSON and CSV), flags, adjudication, the command."""

import csv
import io
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from conversations.models import Role
from ratings.models import DriftFlag, Item, QualityRun
from ratings.services.quality import quality_compute

pytestmark = pytest.mark.django_db


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def computed(judged):
    project, raters = judged
    quality_compute(project_id=project.pk, n_boot=50)
    return project, raters


def test_dashboard_shows_real_charts_and_the_rater_table(client, computed, lead):
    project, raters = computed
    client.force_login(lead)
    html = client.get(f"/projects/{project.slug}/quality/").content.decode()
    assert "<svg viewBox" in html and "polyline" in html  # the agreement chart
    assert "heatmap" in html  # confusion matrices
    for rater in raters:
        assert rater.username in html
    rater_page = client.get(
        f"/projects/{project.slug}/quality/raters/{raters[3].pk}/"
    ).content.decode()
    assert "line-chart" in rater_page


def test_chart_data_is_served_as_json_and_csv(computed, lead):
    project, raters = computed
    client = api(lead)
    rows = client.get(f"/api/v1/projects/{project.slug}/quality/agreement/").json()
    assert {"kind", "criterion", "metric", "value", "ci_low", "ci_high"} <= set(rows[0])
    response = client.get(f"/api/v1/projects/{project.slug}/quality/raters/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {int(r["rater_id"]) for r in table} == {r.pk for r in raters}
    confusion = client.get(f"/api/v1/projects/{project.slug}/quality/confusion/").json()
    assert "pairwise/" in confusion and len(confusion["pairwise/"]["matrix"]) == 3
    trend = client.get(
        f"/api/v1/projects/{project.slug}/quality/raters/{raters[0].pk}/trend/"
    ).json()
    assert trend["trend"] and "flags" in trend
    assert (
        client.get(f"/api/v1/projects/{project.slug}/quality/contested/?format=csv").status_code
        == 200
    )


@pytest.mark.parametrize("role", [Role.EVALUATOR, Role.SME, Role.CONSUMER])
def test_quality_is_for_leads_only(client, computed, member, role):
    project, _ = computed
    user = member(role)
    client.force_login(user)
    assert client.get(f"/projects/{project.slug}/quality/").status_code == 403
    assert api(user).get(f"/api/v1/projects/{project.slug}/quality/raters/").status_code == 403
    assert api(user).post(f"/api/v1/projects/{project.slug}/quality/run/").status_code == 403


def test_run_now_queues_the_task_after_commit(computed, lead, django_capture_on_commit_callbacks):
    project, _ = computed
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api(lead).post(f"/api/v1/projects/{project.slug}/quality/run/")
    assert response.status_code == 202 and len(callbacks) == 1
    assert QualityRun.objects.filter(project=project).count() == 1  # nothing changed: skipped


def test_flags_are_acknowledged_and_resolved_with_a_note(computed, lead, client):
    project, raters = computed
    from django.utils import timezone

    flag = DriftFlag.objects.create(
        project=project,
        rater=raters[3],
        detector="agreement",
        window_kind="count",
        window_start=timezone.now(),
        window_end=timezone.now(),
        evidence={"p_value": 0.001},
    )
    client_api = api(lead)
    assert (
        client_api.patch(
            f"/api/v1/flags/{flag.pk}/", {"state": "resolved"}, format="json"
        ).status_code
        == 400
    )
    assert (
        client_api.patch(
            f"/api/v1/flags/{flag.pk}/", {"state": "resolved", "note": "retrained"}, format="json"
        ).json()["state"]
        == "resolved"
    )
    assert (
        api(raters[0])
        .patch(f"/api/v1/flags/{flag.pk}/", {"state": "open"}, format="json")
        .status_code
        == 403
    )


def test_contested_item_can_be_rerated_or_its_consensus_promoted(client, computed, lead):
    project, _ = computed
    item = Item.objects.filter(project=project, kind="pairwise").first()
    client.force_login(lead)
    assert client.get(f"/items/{item.pk}/").status_code == 200
    client.post(f"/items/{item.pk}/", {"action": "rerate", "extra": "2"})
    item.refresh_from_db()
    assert (item.overlap, item.priority) == (5, 100)
    client.post(f"/items/{item.pk}/", {"action": "promote"})
    item.refresh_from_db()
    assert item.is_gold and item.gold_answer in (
        {"winner": "a"},
        {"winner": "b"},
        {"winner": "tie"},
    )


def test_compute_quality_command(computed):
    project, _ = computed
    out = StringIO()
    call_command("compute_quality", project=project.slug, force=True, bootstrap=0, stdout=out)
    assert "succeeded" in out.getvalue() and QualityRun.objects.filter(project=project).count() == 2
