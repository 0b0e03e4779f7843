"""Project set-up: the spec file command, the lead's settings page, admin."""

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from conversations.models import Membership, Project, Role
from ratings.models import Item, Judgment, Rubric
from tests.factories import UserFactory, pairwise_conversation

pytestmark = pytest.mark.django_db
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "project.yaml"


def test_create_project_from_the_documented_spec():
    out = StringIO()
    call_command("create_project", spec=EXAMPLE, stdout=out)
    project = Project.objects.get(slug="support-bot-eval")
    assert (project.overlap, project.gold_rate, project.has_kb_verification) == (3, 0.05, True)
    assert "How to rate" in project.guidelines
    rubric = Rubric.objects.get(project=project)
    assert [c.key for c in rubric.criteria.all()] == ["helpfulness", "accuracy", "tone"]
    assert set(Membership.objects.filter(project=project).values_list("role", flat=True)) == set(
        Role.values
    )
    assert "project support-bot-eval ready" in out.getvalue()
    with pytest.raises(CommandError, match="exists; pass --update"):
        call_command("create_project", spec=EXAMPLE, stdout=StringIO())
    call_command("create_project", spec=EXAMPLE, update=True, stdout=StringIO())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"overlap": 0}, "overlap: expected 1 to 50"),
        ({"task_types": ["review"]}, "unknown task types"),
        ({"members": [{"username": "x", "role": "boss"}]}, "members[0]"),
        ({"rubric": [{"key": "a", "scale": "stars"}]}, "rubric[0].scale"),
        ({"colour": "blue"}, "unknown keys: colour"),
    ],
)
def test_bad_specs_are_refused_and_create_nothing(tmp_path, change, message):
    spec = yaml.safe_load(EXAMPLE.read_text()) | change
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call_command("create_project", spec=path, stdout=StringIO())
    assert not Project.objects.exists()


def test_lead_edits_settings_rubric_and_members_in_the_web_ui(client, project, lead):
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/settings/")
    assert page.status_code == 200
    other = UserFactory(username="newbie")
    response = client.post(
        f"/projects/{project.slug}/settings/",
        {
            "action": "settings",
            "name": "Renamed",
            "guidelines": "# New",
            "task_types": ["score", "pairwise"],
            "overlap": 2,
            "gold_rate": 0.1,
            "lease_seconds": 600,
            "allow_edits": "on",
        },
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.name, project.overlap, project.guidelines_version) == ("Renamed", 2, 2)
    client.post(
        f"/projects/{project.slug}/rubric/",
        {"action": "yaml", "rubric": "- key: helpfulness\n  anchors: [Useless, Excellent]\n"},
    )
    assert Rubric.objects.get(project=project).criteria.get().key == "helpfulness"
    client.post(
        f"/projects/{project.slug}/members/",
        {"action": "add", "add-username": "newbie", "add-role": "sme"},
    )
    assert Membership.objects.get(project=project, user=other).role == "sme"
    bad = client.post(
        f"/projects/{project.slug}/members/",
        {"action": "add", "add-username": "ghost", "add-role": "sme"},
    )
    assert bad.status_code == 200 and "No user" in bad.content.decode()
    bad_rubric = client.post(
        f"/projects/{project.slug}/rubric/",
        {"action": "yaml", "rubric": "- key: a\n  scale: stars\n"},
    )
    assert "expected one of likert" in bad_rubric.content.decode()


def test_lead_queues_items_by_filter_and_by_uploaded_list(client, project, lead):
    from ratings.services.rubrics import rubric_set

    rubric_set(
        project=project,
        user=lead,
        criteria=[{"key": "helpfulness", "anchors": ["Useless", "Excellent"]}],
    )
    for i in range(3):
        pairwise_conversation(project, external_id=f"c{i}")
    client.force_login(lead)
    client.post(
        f"/projects/{project.slug}/settings/",
        {"action": "queue", "kinds": ["pairwise"], "external_ids": "c0\nc2", "priority": 5},
    )
    assert sorted(Item.objects.values_list("conversation__external_id", "priority")) == [
        ("c0", 5),
        ("c2", 5),
    ]
    client.post(
        f"/projects/{project.slug}/settings/",
        {"action": "queue", "kinds": ["score"], "model": "model-1", "priority": 0},
    )
    assert Item.objects.filter(kind="score").count() == 3
    assert set(Item.objects.filter(kind="score").values_list("response__model", flat=True)) == {
        "model-1"
    }


def test_settings_page_is_for_leads_only(client, project, member):
    for role in (Role.EVALUATOR, Role.SME, Role.CONSUMER):
        client.force_login(member(role))
        assert client.get(f"/projects/{project.slug}/settings/").status_code == 403
        assert (
            client.post(
                f"/projects/{project.slug}/members/",
                {"action": "add", "add-username": "x", "add-role": "lead"},
            ).status_code
            == 403
        )


def test_admin_shows_judgments_read_only(admin_client, rated_project, raters):
    from ratings.services.assignments import assignment_next
    from ratings.services.judgments import judgment_submit

    a = assignment_next(project=rated_project, rater=raters[0], kind="pairwise")
    judgment = judgment_submit(assignment=a, rater=raters[0], answer={"choice": "tie"})
    assert admin_client.get(f"/admin/ratings/judgment/{judgment.pk}/change/").status_code == 200
    assert (
        admin_client.post(
            f"/admin/ratings/judgment/{judgment.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert Judgment.objects.filter(pk=judgment.pk).exists()
    assert admin_client.get("/admin/conversations/project/add/").status_code == 200
