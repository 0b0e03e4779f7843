"""The rating hot path: next and submit through the API with token authentication, in a
bounded number of queries, and what the shortcuts on that path must not change."""

import pytest
from django.db import connection
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from conversations.models import Project, Role
from conversations.services.access import role_of
from ratings.api import JudgmentOutputSerializer
from ratings.models import Assignment, AssignmentState, Item, Judgment, Score, TaskKind
from ratings.services import judgments
from ratings.services.assignments import assignment_next
from ratings.services.judgments import judgment_submit
from ratings.services.rubrics import rubric_set
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def rate_once(client, project, answer=None) -> dict:
    task = client.post(
        f"/api/v1/projects/{project.slug}/next/", {"kind": "pairwise"}, format="json"
    )
    assert task.status_code == 200, task.content
    done = client.post(
        f"/api/v1/assignments/{task.json()['assignment_id']}/submit/",
        answer or {"choice": "tie"},
        format="json",
    )
    assert done.status_code == 201, done.content
    return done.json()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="one statement per claim and per submit write"
)
def test_next_and_submit_stay_within_their_query_budget(
    rated_project, raters, django_assert_max_num_queries
):
    client = token_client(raters[0])
    rate_once(client, rated_project)  # this process reads the rubric once
    # token and user; project with the rater's role; the claim; the task's messages
    with django_assert_max_num_queries(4):
        task = client.post(
            f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "pairwise"}, format="json"
        )
    assert task.status_code == 200
    # token and user; assignment with item, project and rubric digest; the write
    with django_assert_max_num_queries(3):
        done = client.post(
            f"/api/v1/assignments/{task.json()['assignment_id']}/submit/",
            {"choice": "left_better", "scores": {"helpfulness": "right_better"}},
            format="json",
        )
    assert done.status_code == 201, done.content
    judgment = Judgment.objects.get(pk=done.json()["id"])
    assignment = judgment.assignment
    assert assignment.state == AssignmentState.SUBMITTED and assignment.submitted_at
    assert judgment.item.n_done == 1 and judgment.item.n_active == 1
    flip = 1 if assignment.left_is_a else -1
    assert judgment.preference == -flip
    assert [(s.criterion.key, s.value) for s in judgment.scores.all()] == [
        ("helpfulness", float(flip))
    ]
    assert done.json()["scores"] == {"helpfulness": float(flip)}


def test_submit_answer_renders_like_the_generic_serializer(rated_project, raters):
    body = rate_once(
        token_client(raters[0]),
        rated_project,
        {"choice": "right_better", "rationale": "clearer", "scores": {"helpfulness": "tie"}},
    )
    judgment = Judgment.objects.select_related("item").get(pk=body["id"])
    generic = serializers.ModelSerializer.to_representation(
        JudgmentOutputSerializer(judgment), judgment
    )
    assert body == JudgmentOutputSerializer(judgment).data == generic
    assert list(body) == JudgmentOutputSerializer.Meta.fields


def test_a_rubric_change_is_seen_by_the_very_next_task_and_submit(rated_project, raters, lead):
    client = token_client(raters[0])
    rate_once(client, rated_project)  # rubric v1 is now cached in this process, and judged
    rubric_set(
        project=rated_project,
        user=lead,
        criteria=[{"key": "clarity", "points": 5, "applies_to": ["pairwise"]}],
    )
    next_url = f"/api/v1/projects/{rated_project.slug}/next/"
    task = client.post(next_url, {"kind": "pairwise"}, format="json").json()
    assert [c["key"] for c in task["criteria"]] == ["clarity"] and task["rubric_version"] == 2
    # v2 has no judgment yet: this edits it in place
    rubric_set(
        project=rated_project,
        user=lead,
        criteria=[{"key": "tone", "points": 3, "applies_to": ["pairwise"]}],
    )
    url = f"/api/v1/assignments/{task['assignment_id']}/submit/"
    stale = client.post(url, {"choice": "tie", "scores": {"clarity": "tie"}}, format="json")
    assert stale.status_code == 400 and "unknown criteria: clarity" in str(stale.json())
    fresh = client.post(url, {"choice": "tie", "scores": {"tone": "tie"}}, format="json")
    assert fresh.status_code == 201 and fresh.json()["scores"] == {"tone": 0.0}
    other = token_client(raters[1]).post(next_url, {"kind": "pairwise"}, format="json").json()
    assert [c["key"] for c in other["criteria"]] == ["tone"] and other["rubric_version"] == 2


def test_a_lease_that_expires_between_read_and_write_takes_the_locked_path(
    rated_project, raters, monkeypatch
):
    a = assignment_next(project=rated_project, rater=raters[0], kind=TaskKind.PAIRWISE)
    read = judgments._submission_read
    stale = read(a.pk)  # what the fast path saw: a live lease

    def expire_then_read(assignment_id):
        # a sweep by another rater lands between the read and the write
        Assignment.objects.filter(pk=assignment_id).update(state=AssignmentState.EXPIRED)
        Item.objects.filter(pk=a.item_id).update(n_active=0)
        return stale

    monkeypatch.setattr(judgments, "_submission_read", expire_then_read)
    judgment = judgment_submit(assignment=a.pk, rater=raters[0], answer={"choice": "tie"})
    item = Item.objects.get(pk=a.item_id)
    assert (item.n_active, item.n_done) == (1, 1)  # the free slot was taken again
    assert Assignment.objects.get(pk=a.pk).state == AssignmentState.SUBMITTED
    assert Judgment.objects.filter(pk=judgment.pk, assignment_id=a.pk).exists()


def test_repeated_submit_is_refused_and_counted_once(rated_project, raters):
    client = token_client(raters[0])
    task = client.post(
        f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "pairwise"}, format="json"
    ).json()
    url = f"/api/v1/assignments/{task['assignment_id']}/submit/"
    assert client.post(url, {"choice": "tie"}, format="json").status_code == 201
    again = client.post(url, {"choice": "tie"}, format="json")
    assert again.status_code == 400 and "already submitted" in str(again.json())
    assert Judgment.objects.count() == 1 and Score.objects.count() == 0
    assert Item.objects.get(pk=Judgment.objects.get().item_id).n_done == 1


def test_unknown_and_foreign_assignments_are_not_found(rated_project, raters):
    task = (
        token_client(raters[0])
        .post(f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "pairwise"}, format="json")
        .json()
    )
    other = token_client(raters[1])
    for pk in (task["assignment_id"], 10**9):
        assert (
            other.post(f"/api/v1/assignments/{pk}/submit/", {"choice": "tie"}, format="json")
        ).status_code == 404
    assert Judgment.objects.count() == 0


def test_token_authentication_refuses_bad_and_inactive_tokens(rated_project, raters):
    # 403 rather than 401: the first authentication class (session) sends no challenge
    url = f"/api/v1/projects/{rated_project.slug}/next/"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    refused = client.post(url, {}, format="json")
    assert refused.status_code == 403 and refused.json()["detail"] == "Invalid token."
    good = token_client(raters[0])
    assert good.post(url, {}, format="json").status_code == 200
    raters[0].is_active = False
    raters[0].save()
    refused = good.post(url, {}, format="json")
    assert refused.status_code == 403 and refused.json()["detail"] == "User inactive or deleted."


def test_session_requests_still_need_the_csrf_token(rated_project, raters):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(raters[0])
    url = f"/api/v1/projects/{rated_project.slug}/next/"
    refused = client.post(url, {}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert token_client(raters[0]).post(url, {}, format="json").status_code == 200


def test_a_role_read_with_the_project_serves_only_that_user(
    rated_project, raters, lead, django_assert_num_queries
):
    project = Project.objects.with_viewer_role(raters[0]).get(pk=rated_project.pk)
    with django_assert_num_queries(0):
        assert role_of(user=raters[0], project=project) == Role.EVALUATOR
    with django_assert_num_queries(1):
        assert role_of(user=lead, project=project) == Role.LEAD
    assert not Project.objects.with_viewer_role(UserFactory()).exists()


def test_a_gold_draw_with_no_gold_item_left_still_gives_work(rated_project, raters):
    rated_project.gold_rate = 1.0  # every draw asks for gold first; there is none
    rated_project.save()
    a = assignment_next(project=rated_project, rater=raters[0], kind=TaskKind.PAIRWISE)
    assert a is not None and not a.item.is_gold
    assert Item.objects.get(pk=a.item_id).n_active == 1
