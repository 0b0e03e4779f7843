"""The rating API: next, submit, skip, revise, stats; and every forbidden path."""

import json

import pytest
from rest_framework.test import APIClient

from conversations.models import Role
from ratings.models import Assignment, Judgment, TaskKind
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_rate_a_pair_through_the_api(rated_project, raters):
    client = api(raters[0])
    task = client.post(
        f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "pairwise"}, format="json"
    )
    assert task.status_code == 200
    body = task.json()
    assert [r["slot"] for r in body["responses"]] == ["left", "right"]
    assert "model" not in json.dumps(body)  # model names are hidden from raters
    assert [c["key"] for c in body["criteria"]] == ["helpfulness"]
    assert body["context"] == [
        {"role": "user", "content": "What is the capital of France?", "name": ""}
    ]
    done = client.post(
        f"/api/v1/assignments/{body['assignment_id']}/submit/",
        {"choice": "right_much_better", "rationale": "clearer", "time_on_task_ms": 4100},
        format="json",
    )
    assert done.status_code == 201, done.json()
    judgment = Judgment.objects.get()
    assert judgment.time_on_task_ms == 4100 and abs(judgment.preference) == 2
    mine = client.get(f"/api/v1/projects/{rated_project.slug}/my/judgments/").json()
    assert [j["id"] for j in mine] == [judgment.pk]
    revised = client.post(
        f"/api/v1/judgments/{judgment.pk}/revise/", {"choice": "tie"}, format="json"
    )
    assert revised.status_code == 201 and revised.json()["version"] == 2
    stats = client.get(f"/api/v1/projects/{rated_project.slug}/my/stats/").json()
    assert stats["done_today"] == 1 and stats["remaining"]["pairwise"] == 3


def test_submit_refusals_are_400_with_the_field(rated_project, raters):
    client = api(raters[0])
    task = client.post(
        f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "score"}, format="json"
    ).json()
    bad = client.post(
        f"/api/v1/assignments/{task['assignment_id']}/submit/",
        {"scores": {"helpfulness": 9}},
        format="json",
    )
    assert bad.status_code == 400 and "scores.helpfulness" in bad.json()


def test_skip_then_nothing_left_is_204(rated_project, raters):
    client = api(raters[0])
    for _ in range(20):
        r = client.post(
            f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "pairwise"}, format="json"
        )
        if r.status_code == 204:
            break
        skip = client.post(
            f"/api/v1/assignments/{r.json()['assignment_id']}/skip/",
            {"reason": "unclear"},
            format="json",
        )
        assert skip.status_code == 200
    assert r.status_code == 204
    assert (
        client.post("/api/v1/assignments/999999/skip/", {"reason": "x"}, format="json").status_code
        == 404
    )


def test_evaluator_cannot_touch_another_raters_work(rated_project, raters):
    a = (
        api(raters[0])
        .post(f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "score"}, format="json")
        .json()
    )
    other = api(raters[1])
    assert (
        other.post(
            f"/api/v1/assignments/{a['assignment_id']}/submit/",
            {"scores": {"helpfulness": 3, "accuracy": 1}},
            format="json",
        ).status_code
        == 404
    )
    api(raters[0]).post(
        f"/api/v1/assignments/{a['assignment_id']}/submit/",
        {"scores": {"helpfulness": 3, "accuracy": 1}},
        format="json",
    )
    judgment = Judgment.objects.get()
    assert (
        other.post(
            f"/api/v1/judgments/{judgment.pk}/revise/",
            {"scores": {"helpfulness": 1, "accuracy": 1}},
            format="json",
        ).status_code
        == 404
    )
    assert other.get(f"/api/v1/projects/{rated_project.slug}/my/judgments/").json() == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "rubric/", {"criteria": [{"key": "x"}]}),
        ("post", "items/queue/", {}),
        ("get", "items/", None),
        ("get", "progress/", None),
        ("post", "imports/", {}),
    ],
)
@pytest.mark.parametrize("role", [Role.EVALUATOR, Role.SME, Role.CONSUMER])
def test_only_leads_change_settings_or_see_the_whole_project(
    rated_project, member, role, method, path, body
):
    response = getattr(api(member(role)), method)(
        f"/api/v1/projects/{rated_project.slug}/{path}",
        body,
        format="json" if method != "post" or path != "imports/" else "multipart",
    )
    assert response.status_code == 403


def test_consumer_cannot_rate(rated_project, member):
    response = api(member(Role.CONSUMER)).post(
        f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "score"}, format="json"
    )
    assert response.status_code == 403


def test_non_members_see_nothing(rated_project):
    outsider = api(UserFactory())
    for path in ("", "rubric/", "next/", "my/stats/", "items/"):
        method = outsider.post if path == "next/" else outsider.get
        assert (
            method(
                f"/api/v1/projects/{rated_project.slug}/{path}", {"kind": "score"}, format="json"
            ).status_code
            == 404
        )


def test_next_without_a_kind_leases_nothing(rated_project, raters):
    response = api(raters[0]).post(
        f"/api/v1/projects/{rated_project.slug}/next/", {}, format="json"
    )
    assert response.status_code == 400 and "kind" in response.json()
    assert not Assignment.objects.filter(rater=raters[0]).exists()


def test_lead_sets_rubric_queues_items_and_lists_them(project, lead, django_assert_num_queries):
    from tests.factories import pairwise_conversation

    client = api(lead)
    for i in range(3):
        pairwise_conversation(project, external_id=f"c{i}")
    rubric = client.put(
        f"/api/v1/projects/{project.slug}/rubric/",
        {"criteria": [{"key": "helpfulness", "points": 5, "anchors": ["Poor", "Excellent"]}]},
        format="json",
    )
    assert rubric.status_code == 200 and rubric.json()["version"] == 1
    bad = client.put(
        f"/api/v1/projects/{project.slug}/rubric/",
        {"criteria": [{"key": "x", "scale": "stars"}]},
        format="json",
    )
    assert bad.status_code == 400 and "rubric[0].scale" in bad.json()
    queued = client.post(
        f"/api/v1/projects/{project.slug}/items/queue/",
        {"external_ids": ["c0", "c1"], "kinds": ["pairwise"]},
        format="json",
    )
    assert queued.status_code == 201 and queued.json()["created"] == {"pairwise": 2}
    unknown = client.post(
        f"/api/v1/projects/{project.slug}/items/queue/", {"external_ids": ["nope"]}, format="json"
    )
    assert unknown.status_code == 400 and "external_ids" in unknown.json()
    with django_assert_num_queries(3):  # project with the user's role, count, page
        listing = client.get(f"/api/v1/projects/{project.slug}/items/")
    assert listing.json()["count"] == 2
    assert {i["kind"] for i in listing.json()["results"]} == {TaskKind.PAIRWISE}


def test_lead_marks_gold_and_raters_cannot(rated_project, raters, lead):
    from ratings.models import Item

    item = Item.objects.filter(project=rated_project, kind="pairwise").first()
    url = f"/api/v1/items/{item.pk}/gold/"
    assert api(raters[0]).post(url, {"answer": {"winner": "a"}}, format="json").status_code == 403
    response = api(lead).post(url, {"answer": {"winner": "a"}}, format="json")
    assert response.json() == {"id": item.pk, "is_gold": True, "gold_answer": {"winner": "a"}}
    no_consensus = api(lead).post(url, {"promote_consensus": True}, format="json")
    assert no_consensus.status_code == 400  # nobody judged it yet
    assert api(UserFactory()).post(url, {"answer": None}, format="json").status_code == 404


def test_api_docs_page_is_served_without_a_cdn(client, lead):
    client.force_login(lead)
    page = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in page and "cdn" not in page.lower()
