"""The rating hot path: next and submit through the API with token authentication, in a
bounded number of queries, and what the shortcuts on that path must not change."""

import pytest
from django.db import connection
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from conversations.models import Project, Role
from conversations.services.access import _member_project_query, project_of_member, role_of
from ratings.api import AnswerSerializer, JudgmentOutputSerializer, NextApi
from ratings.models import Assignment, AssignmentState, Item, Judgment, Score, TaskKind
from ratings.selectors import task_view
from ratings.services.assignments import assignment_next
from ratings.services.judgments import judgment_submit
from ratings.services.judgments import submit as submitting
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


@pytest.mark.postgres  # the budget of the one-statement claim and submit
def test_next_and_submit_stay_within_their_query_budget(
    rated_project, raters, django_assert_max_num_queries
):
    # no gold draw: a draw for gold when no gold item is open costs a second claim statement
    # (asserted below), and the module's random state depends on the tests run before
    rated_project.gold_rate = 0
    rated_project.save()
    client = token_client(raters[0])
    rate_once(client, rated_project)  # this process reads the rubric once
    # token and user; project with the rater's role; the claim, with the task's messages
    with django_assert_max_num_queries(3):
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
    # every draw asks for gold, and there is none: the claim tries gold, then the rest
    rated_project.gold_rate = 1
    rated_project.save()
    with django_assert_max_num_queries(4):
        task = client.post(
            f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "pairwise"}, format="json"
        )
    assert task.status_code == 200 and task.json()["assignment_id"] != assignment.pk


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
        criteria=[
            {
                "key": "clarity",
                "points": 5,
                "anchors": ["Poor", "Excellent"],
                "applies_to": ["pairwise"],
            }
        ],
    )
    next_url = f"/api/v1/projects/{rated_project.slug}/next/"
    task = client.post(next_url, {"kind": "pairwise"}, format="json").json()
    assert [c["key"] for c in task["criteria"]] == ["clarity"] and task["rubric_version"] == 2
    # v2 has no judgment yet: this edits it in place
    rubric_set(
        project=rated_project,
        user=lead,
        criteria=[
            {
                "key": "tone",
                "points": 3,
                "anchors": ["Poor", "Excellent"],
                "applies_to": ["pairwise"],
            }
        ],
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
    read = submitting._submission_read
    stale = read(a.pk)  # what the fast path saw: a live lease

    def expire_then_read(assignment_id):
        # a sweep by another rater lands between the read and the write
        Assignment.objects.filter(pk=assignment_id).update(state=AssignmentState.EXPIRED)
        Item.objects.filter(pk=a.item_id).update(n_active=0)
        return stale

    monkeypatch.setattr(submitting, "_submission_read", expire_then_read)
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
    # 401 with a challenge: the token authentication class comes first
    url = f"/api/v1/projects/{rated_project.slug}/next/"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    refused = client.post(url, {}, format="json")
    assert refused.status_code == 401 and refused.json()["detail"] == "Invalid token."
    assert refused["WWW-Authenticate"] == "Token"
    good = token_client(raters[0])
    assert good.post(url, {"kind": "pairwise"}, format="json").status_code == 200
    raters[0].is_active = False
    raters[0].save()
    refused = good.post(url, {}, format="json")
    assert refused.status_code == 401 and refused.json()["detail"] == "User inactive or deleted."


def test_session_requests_still_need_the_csrf_token(rated_project, raters):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(raters[0])
    url = f"/api/v1/projects/{rated_project.slug}/next/"
    refused = client.post(url, {}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert token_client(raters[0]).post(url, {"kind": "pairwise"}, format="json").status_code == 200


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


def test_the_claim_gives_the_task_view_what_the_queryset_gives(rated_project, raters):
    """The context read by the claim statement is ``Message.objects.context_of``'s."""
    item = Item.objects.filter(project=rated_project).select_related("response").first()
    conversation, turn = item.conversation, item.response.position
    # a third candidate of the rated turn is not context, nor is a later message
    conversation.messages.create(position=turn, candidate=2, role="assistant", content="c")
    conversation.messages.create(position=turn + 1, role="user", content="after")
    for rater in raters[:3]:
        while (
            a := assignment_next(project=rated_project, rater=rater, kind="pairwise")
        ) is not None:
            fresh = Assignment.objects.get(pk=a.pk)  # no row of the claim attached
            assert not hasattr(fresh, "task_messages")
            assert task_view(a) == task_view(fresh)
            assert task_view(a)["context"]
            judgment_submit(assignment=a.pk, rater=rater, answer={"choice": "tie"})


@pytest.mark.postgres
def test_the_rating_path_statements_are_prepared_once_per_connection(rated_project, raters):
    client = token_client(raters[0])
    for _ in range(3):
        rate_once(client, rated_project)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE from_sql IS FALSE")
        prepared = [row[0] for row in cursor.fetchall()]
    assert len(prepared) == 5  # token, project and role, claim, submission read, submit
    assert all("WITH" in sql or sql.lstrip().startswith("SELECT") for sql in prepared), prepared


def test_the_member_project_read_matches_the_queryset(rated_project, raters, lead):
    for user in (raters[0], lead, UserFactory(), UserFactory(is_superuser=True)):
        found = project_of_member(user=user, slug=rated_project.slug)
        expected = Project.objects.with_viewer_role(user).filter(slug=rated_project.slug).first()
        if expected is None:
            assert found is None
            continue
        assert found is not None and found.pk == expected.pk
        assert (found.viewer_id, found.viewer_role) == (user.pk, expected.viewer_role)
        assert role_of(user=user, project=found) == role_of(user=user, project=expected)
        for field in Project._meta.concrete_fields:
            assert getattr(found, field.attname) == getattr(expected, field.attname)
    assert project_of_member(user=raters[0], slug="no-such-project") is None


def test_next_does_not_carry_the_annotation_guide(rated_project, raters):
    guide = "# Guide\n\n" + "Judge helpfulness first, then accuracy. " * 2000  # ~80 KB
    Project.objects.filter(pk=rated_project.pk).update(guidelines=guide, description="d" * 5000)
    sql = _member_project_query()[0]
    assert '"guidelines"' not in sql and '"description"' not in sql
    assert '"guidelines_version"' in sql
    client = token_client(raters[0])
    response = client.post(
        f"/api/v1/projects/{rated_project.slug}/next/", {"kind": "score"}, format="json"
    )
    assert response.status_code == 200 and response.json()["assignment_id"]
    # read on first use, and the project's own page still shows the guide
    found = project_of_member(user=raters[0], slug=rated_project.slug)
    assert found.get_deferred_fields() == {"description", "guidelines"}
    assert found.guidelines == guide
    detail = client.get(f"/api/v1/projects/{rated_project.slug}/")
    assert detail.status_code == 200 and detail.json()["guidelines"] == guide


@pytest.mark.parametrize("serializer", [AnswerSerializer, NextApi.InputSerializer])
def test_serializers_with_shared_fields_validate_like_deep_copied_ones(serializer):
    class DeepCopied(serializer):
        def get_fields(self):
            return serializers.Serializer.get_fields(self)

    payloads = [
        {},
        {"kind": "pairwise"},
        {"kind": "nope"},
        {"kind": ""},
        {"choice": "left_better", "time_on_task_ms": 1200, "scores": {"a": 3, "b": None}},
        {"choice": "  tie ", "both_bad": "true", "rationale": "", "extra": 1},
        {"choice": "", "time_on_task_ms": -1, "both_bad": "maybe"},
        {"choice": True, "verdict": None, "scores": ["a"], "kb_issues": "x"},
        {"kb_issues": [{"article_id": "k1", "problem": "wrong"}, "not a dict", 3]},
        {"rationale": "a\x00b", "time_on_task_ms": "12", "missing_fact": "\ud800"},
        ["not", "a", "dict"],
    ]
    for _ in range(2):  # the same fields serve again, unchanged
        for data in payloads:
            shared, deep = serializer(data=data), DeepCopied(data=data)
            assert shared.is_valid() == deep.is_valid(), data
            assert shared.errors == deep.errors, data
            assert dict(shared.validated_data if not shared.errors else {}) == dict(
                deep.validated_data if not deep.errors else {}
            ), data
    for field in serializer._declared_fields.values():
        assert field.parent is None and field.field_name is None
