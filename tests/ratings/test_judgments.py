"""Judgments: rubric validation, true A/B mapping of pairwise answers, versions, KB verdicts."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from conversations.models import KBReference, Role
from ratings.models import Judgment, Rubric, TaskKind
from ratings.services.assignments import assignment_next
from ratings.services.items import items_queue
from ratings.services.judgments import judgment_revise, judgment_submit
from ratings.services.rubrics import rubric_set
from tests.factories import pairwise_conversation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("accel_mode")]


def next_of(project, rater, kind):
    return assignment_next(project=project, rater=rater, kind=kind)


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"scores": {"accuracy": True}}, "scores.helpfulness"),
        ({"scores": {"helpfulness": 6, "accuracy": True}}, "scores.helpfulness"),
        ({"scores": {"helpfulness": 2.5, "accuracy": True}}, "scores.helpfulness"),
        ({"scores": {"helpfulness": 3, "accuracy": "maybe"}}, "scores.accuracy"),
        ({"scores": {"helpfulness": 3, "accuracy": True, "tone": "angry"}}, "scores.tone"),
        ({"scores": {"helpfulness": 3, "accuracy": True, "speed": 3}}, "scores"),
        ({"scores": {"helpfulness": 3, "accuracy": True}, "rationale": 5}, "rationale"),
    ],
)
def test_score_answers_that_do_not_fit_the_rubric_are_refused(rated_project, raters, answer, field):
    a = next_of(rated_project, raters[0], TaskKind.SCORE)
    with pytest.raises(ValidationError) as exc:
        judgment_submit(assignment=a, rater=raters[0], answer=answer)
    assert field in exc.value.message_dict
    assert Judgment.objects.count() == 0


def test_score_judgment_records_scores_rubric_version_and_time(rated_project, raters):
    a = next_of(rated_project, raters[0], TaskKind.SCORE)
    j = judgment_submit(
        assignment=a,
        rater=raters[0],
        time_on_task_ms=8200,
        answer={
            "scores": {"helpfulness": 4, "accuracy": "no", "tone": "warm", "notes": " ok "},
            "rationale": "Fine.",
        },
    )
    assert {s.criterion.key: (s.value, s.choices, s.text) for s in j.scores.all()} == {
        "helpfulness": (4.0, [], ""),
        "accuracy": (0.0, [], ""),
        "tone": (2.0, ["warm"], ""),
        "notes": (None, [], "ok"),
    }
    assert (j.rubric.version, j.time_on_task_ms, j.version, j.is_current) == (1, 8200, 1, True)
    with pytest.raises(ValidationError, match="already submitted"):
        judgment_submit(
            assignment=a, rater=raters[0], answer={"scores": {"helpfulness": 4, "accuracy": 1}}
        )


@pytest.mark.parametrize(
    ("left_is_a", "choice", "expected"),
    [
        (True, "left_much_better", -2),
        (False, "left_much_better", 2),
        (False, "right_better", -1),
        (True, "tie", 0),
    ],
)
def test_pairwise_answers_map_back_to_the_true_responses(
    rated_project, raters, left_is_a, choice, expected
):
    a = next_of(rated_project, raters[0], TaskKind.PAIRWISE)
    a.left_is_a = left_is_a
    a.save()
    j = judgment_submit(
        assignment=a,
        rater=raters[0],
        answer={"choice": choice, "both_bad": True, "scores": {"helpfulness": choice}},
    )
    assert (j.preference, j.both_bad, j.left_is_a) == (expected, True, left_is_a)
    assert j.scores.get().value == expected


def test_pairwise_refuses_unknown_choices(rated_project, raters):
    a = next_of(rated_project, raters[0], TaskKind.PAIRWISE)
    for bad in ({"choice": "A"}, {}, {"choice": "tie", "both_bad": "yes"}):
        with pytest.raises(ValidationError):
            judgment_submit(assignment=a, rater=raters[0], answer=bad)


def test_revision_creates_a_new_version_and_keeps_the_old(rated_project, raters):
    a = next_of(rated_project, raters[0], TaskKind.SCORE)
    first = judgment_submit(
        assignment=a, rater=raters[0], answer={"scores": {"helpfulness": 2, "accuracy": 1}}
    )
    second = judgment_revise(
        judgment=first, rater=raters[0], answer={"scores": {"helpfulness": 5, "accuracy": 1}}
    )
    first.refresh_from_db()
    assert (first.version, first.is_current, second.version, second.is_current) == (
        1,
        False,
        2,
        True,
    )
    assert first.scores.get(criterion__key="helpfulness").value == 2.0
    with pytest.raises(ValidationError, match="current"):
        judgment_revise(
            judgment=first, rater=raters[0], answer={"scores": {"helpfulness": 1, "accuracy": 1}}
        )
    with pytest.raises(PermissionDenied):
        judgment_revise(
            judgment=second, rater=raters[1], answer={"scores": {"helpfulness": 1, "accuracy": 1}}
        )
    rated_project.allow_edits = False
    rated_project.save()
    with pytest.raises(PermissionDenied, match="does not allow editing"):
        judgment_revise(
            judgment=second, rater=raters[0], answer={"scores": {"helpfulness": 1, "accuracy": 1}}
        )
    assert Judgment.objects.filter(item=a.item, rater=raters[0]).count() == 2


def test_changing_a_rubric_with_judgments_makes_a_new_version(rated_project, raters, lead):
    ends = ["Useless", "Excellent"]
    rubric_set(
        project=rated_project,
        user=lead,
        criteria=[{"key": "helpfulness", "points": 7, "anchors": ends}],
    )
    assert Rubric.objects.filter(project=rated_project).count() == 1  # no judgments yet: in place
    a = next_of(rated_project, raters[0], TaskKind.SCORE)
    j = judgment_submit(assignment=a, rater=raters[0], answer={"scores": {"helpfulness": 7}})
    v2 = rubric_set(
        project=rated_project,
        user=lead,
        criteria=[{"key": "helpfulness", "points": 3, "anchors": ends}],
    )
    assert v2.version == 2 and v2.is_current
    j.refresh_from_db()
    assert j.rubric.version == 1 and j.rubric.criteria.get().points == 7
    with pytest.raises(PermissionDenied):
        rubric_set(project=rated_project, user=raters[0], criteria=[])


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ([{"key": "a", "scale": "likert", "points": 11}], "rubric[0].points"),
        ([{"key": "a", "anchors": ["x", "y", "z", "w"], "points": 3}], "rubric[0].anchors"),
        ([{"key": "a", "points": 5}], "rubric[0].anchors"),
        ([{"key": "a", "anchors": ["", "y"], "points": 5}], "rubric[0].anchors"),
        ([{"key": "a", "anchors": ["x", "", ""], "points": 3}], "rubric[0].anchors"),
        ([{"key": "a", "scale": "single_choice", "options": ["x"]}], "rubric[0].options"),
        ([{"key": "a"}, {"key": "a"}], "rubric[1].key"),
        ([{"key": "a", "scale": "stars"}], "rubric[0].scale"),
    ],
)
def test_bad_rubric_specs_are_refused(project, lead, spec, field):
    """Each rule names its field; a Likert criterion without end-point anchors is refused."""
    with pytest.raises(ValidationError) as exc:
        rubric_set(project=project, user=lead, criteria=spec)
    assert field in exc.value.message_dict


@pytest.fixture
def kb_project(project, lead):
    project.has_kb_verification = True
    project.save()
    conv = pairwise_conversation(project, n_candidates=1)
    KBReference.objects.create(
        message=conv.messages.get(role="assistant"), article_id="KB-1", title="Capitals"
    )
    items_queue(project=project, user=lead, kinds=(TaskKind.KB_VERIFY,))
    return project


def test_sme_verdicts_need_their_correction_or_missing_fact(kb_project, member):
    sme = member(Role.SME)
    a = next_of(kb_project, sme, TaskKind.KB_VERIFY)
    with pytest.raises(ValidationError, match="corrected_answer"):
        judgment_submit(assignment=a, rater=sme, answer={"verdict": "incorrect"})
    with pytest.raises(ValidationError, match="missing_fact"):
        judgment_submit(assignment=a, rater=sme, answer={"verdict": "incomplete"})
    with pytest.raises(ValidationError, match="kb_issues"):
        judgment_submit(
            assignment=a,
            rater=sme,
            answer={
                "verdict": "incorrect",
                "corrected_answer": "Lyon",
                "kb_issues": [{"article_id": "KB-9", "problem": "wrong"}],
            },
        )
    j = judgment_submit(
        assignment=a,
        rater=sme,
        answer={
            "verdict": "incorrect",
            "corrected_answer": "Paris is right; the year is wrong.",
            "kb_issues": [
                {"article_id": "KB-1", "problem": "outdated"},
                {"article_id": "", "problem": "missing"},
            ],
        },
    )
    assert (j.verdict, j.kb_issues[0]) == (
        "incorrect",
        {"article_id": "KB-1", "problem": "outdated"},
    )


def test_rubric_errors_are_all_reported_at_once(project, lead):
    with pytest.raises(ValidationError) as exc:
        rubric_set(
            project=project,
            user=lead,
            criteria=[{"key": "a"}, {"key": "b", "scale": "single_choice", "options": ["x"]}],
        )
    assert set(exc.value.message_dict) == {"rubric[0].anchors", "rubric[1].options"}


def test_two_anchors_name_the_end_points_of_a_longer_scale(project, lead):
    rubric = rubric_set(
        project=project, user=lead, criteria=[{"key": "a", "points": 4, "anchors": ["Bad", "Good"]}]
    )
    assert rubric.criteria.get().anchors == ["Bad", "", "", "Good"]


def test_every_missing_and_invalid_score_is_reported_at_once(rated_project, raters):
    a = next_of(rated_project, raters[0], TaskKind.SCORE)
    with pytest.raises(ValidationError) as exc:
        judgment_submit(assignment=a, rater=raters[0], answer={"scores": {"tone": "angry"}})
    assert set(exc.value.message_dict) == {"scores.helpfulness", "scores.accuracy", "scores.tone"}
    assert exc.value.message_dict["scores.accuracy"] == ["Accuracy is required"]
