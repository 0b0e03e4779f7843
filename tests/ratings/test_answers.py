"""Answers shown as the rater gave them (My judgments, page and API): sides as shown and
which response that was, option names, yes/no, whole-number scores."""

import pytest
from rest_framework.test import APIClient

from ratings.models import Judgment, TaskKind
from ratings.services.assignments import assignment_next
from ratings.services.judgments import (
    DISPLAY_CHOICES,
    SIDE_CHOICES,
    answer_as_given,
    answer_text,
    judgment_submit,
)

pytestmark = pytest.mark.django_db


def rate(project, rater, kind, answer, *, left_is_a=None):
    a = assignment_next(project=project, rater=rater, kind=kind)
    if left_is_a is not None:
        a.left_is_a = left_is_a
        a.save()
    return judgment_submit(assignment=a, rater=rater, answer=answer)


def test_the_side_choices_are_declared_once():
    assert list(DISPLAY_CHOICES) == [c.value for c in SIDE_CHOICES]
    assert [c.shown for c in SIDE_CHOICES] == [-2, -1, 0, 1, 2]


@pytest.mark.parametrize("left_is_a", [True, False])
def test_a_pair_reads_back_on_the_side_shown(rated_project, raters, left_is_a):
    j = rate(
        rated_project,
        raters[0],
        TaskKind.PAIRWISE,
        {"choice": "right_much_better", "scores": {"helpfulness": "left_better"}},
        left_is_a=left_is_a,
    )
    right, left = ("B", "A") if left_is_a else ("A", "B")
    assert answer_as_given(j) == {
        "choice": "right_much_better",
        "both_bad": False,
        "scores": {"helpfulness": "left_better"},
    }
    assert answer_text(j) == (
        f"Right much better (response {right}); Helpfulness: Left better (response {left})"
    )


def test_a_pair_with_an_unknown_side_stays_in_a_b_terms(rated_project, raters):
    j = rate(rated_project, raters[0], TaskKind.PAIRWISE, {"choice": "tie", "both_bad": True})
    Judgment.objects.filter(pk=j.pk).update(left_is_a=None, preference=2)
    j.refresh_from_db()
    assert answer_as_given(j)["preference"] == "b_much_better"
    assert answer_text(j) == "B much better, both bad"


def test_scores_read_back_as_given(rated_project, raters):
    j = rate(
        rated_project,
        raters[0],
        TaskKind.SCORE,
        {"scores": {"helpfulness": 4, "accuracy": "no", "tone": "warm", "notes": "short"}},
    )
    assert answer_as_given(j)["scores"] == {
        "helpfulness": 4,
        "accuracy": "no",
        "tone": "warm",
        "notes": "short",
    }
    assert isinstance(answer_as_given(j)["scores"]["helpfulness"], int)
    assert answer_text(j) == ("Helpfulness: 4 of 5 (Good); Accuracy: No; Tone: warm; Notes: short")


def test_the_api_and_the_page_say_the_same(rated_project, raters, client):
    rate(
        rated_project,
        raters[0],
        TaskKind.PAIRWISE,
        {"choice": "left_better"},
        left_is_a=False,
    )
    api = APIClient()
    api.force_authenticate(raters[0])
    body = api.get(f"/api/v1/projects/{rated_project.slug}/my/judgments/").json()
    assert body[0]["answer"] == {"choice": "left_better", "both_bad": False}
    assert body[0]["answer_text"] == "Left better (response B)"
    assert body[0]["preference"] == 1  # stored on the true responses: B is better
    client.force_login(raters[0])
    page = client.get(f"/projects/{rated_project.slug}/mine/").content.decode()
    assert "Left better (response B)" in page and "1.0" not in page


def test_a_kb_verdict_reads_back_with_its_correction(project, lead, member):
    from conversations.models import KBReference
    from ratings.services.items import items_queue
    from tests.factories import pairwise_conversation

    project.has_kb_verification = True
    project.save(update_fields=["has_kb_verification"])
    conv = pairwise_conversation(project, n_candidates=1, external_id="kb-0")
    KBReference.objects.create(message=conv.messages.get(role="assistant"), article_id="KB-1")
    items_queue(project=project, user=lead, kinds=(TaskKind.KB_VERIFY,))
    j = rate(
        project,
        member("sme"),
        TaskKind.KB_VERIFY,
        {
            "verdict": "incorrect",
            "corrected_answer": "30 days.",
            "kb_issues": [{"article_id": "KB-1", "problem": "outdated"}],
        },
    )
    assert answer_text(j) == "Incorrect; correct answer: 30 days.; articles: KB-1 outdated"
    assert answer_as_given(j)["verdict"] == "incorrect"
