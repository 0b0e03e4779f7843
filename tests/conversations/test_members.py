"""Who may start a project, and a lead's members: add, invite (a one-time set-password
link), change roles, remove (their judgments stay). Service rules first, then the pages."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings

from conversations.models import Membership, Project, Role
from conversations.services.access import may_create_projects
from conversations.services.projects import (
    member_add,
    member_invite,
    member_remove,
    member_role_change,
)
from ratings.models import Judgment, TaskKind
from ratings.services.assignments import assignment_next
from ratings.services.judgments import judgment_submit
from ratings.services.projects import project_create
from ratings.services.rubrics import rubric_set
from tests.factories import UserFactory, pairwise_conversation

pytestmark = pytest.mark.django_db

NEW = {"name": "Support bot", "overlap": 2, "gold_rate": 0.1}
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"


def creator():
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="add_project"))
    return user


# Who may create projects


def test_permission_holders_leads_and_superusers_may_create_projects(lead):
    assert may_create_projects(creator())
    assert may_create_projects(lead)  # leads somewhere
    assert may_create_projects(UserFactory(is_superuser=True))


@pytest.mark.parametrize(
    "make",
    [
        lambda member: UserFactory(),
        lambda member: UserFactory(is_staff=True),  # admin access is not a project role
        lambda member: member(Role.EVALUATOR),
        lambda member: member(Role.SME),
        lambda member: member(Role.CONSUMER),
        lambda member: creator_inactive(),
    ],
    ids=["no-role", "staff-only", "evaluator", "sme", "consumer", "inactive"],
)
def test_others_may_not_create_projects(member, make):
    user = make(member)
    assert not may_create_projects(user)
    with pytest.raises(PermissionDenied):
        project_create(user=user, values=NEW, task_types=["score"])


def creator_inactive():
    user = creator()
    user.is_active = False
    user.save()
    return user


def test_the_creator_becomes_the_lead_and_the_slug_is_unique():
    user = creator()
    first = project_create(user=user, values=NEW, task_types=["score", "pairwise"])
    second = project_create(user=user, values=NEW, task_types=["pairwise"])
    assert (first.slug, second.slug) == ("support-bot", "support-bot-2")
    assert (first.overlap, first.gold_rate, first.has_kb_verification) == (2, 0.1, False)
    assert Membership.objects.get(project=first, user=user).role == Role.LEAD
    assert first.created_by == user
    assert project_create(user=user, values={"name": "New"}, task_types=["score"]).slug == "new-2"


@pytest.mark.parametrize(
    ("values", "kinds", "field"),
    [
        ({"name": "  "}, ["score"], "name"),
        (NEW | {"overlap": 0}, ["score"], "overlap"),
        (NEW | {"gold_rate": 2}, ["score"], "gold_rate"),
        (NEW, [], "task_types"),
        (NEW, ["review"], "task_types"),
    ],
)
def test_bad_new_projects_are_refused(values, kinds, field):
    with pytest.raises(ValidationError) as exc:
        project_create(user=creator(), values=values, task_types=kinds)
    assert field in exc.value.message_dict
    assert not Project.objects.exists()


# Members


def test_a_lead_adds_an_existing_user_and_changes_a_role(project, lead):
    user = UserFactory(username="rita")
    m = member_add(project=project, user=lead, username="rita", role=Role.EVALUATOR)
    assert m.role == Role.EVALUATOR
    member_role_change(project=project, user=lead, membership_id=m.pk, role=Role.SME)
    assert Membership.objects.get(project=project, user=user).role == Role.SME


@pytest.mark.parametrize(
    ("username", "role", "field"),
    [("ghost", Role.EVALUATOR, "username"), ("rita", "boss", "role")],
)
def test_adding_refuses_unknown_users_and_roles(project, lead, username, role, field):
    UserFactory(username="rita")
    with pytest.raises(ValidationError) as exc:
        member_add(project=project, user=lead, username=username, role=role)
    assert field in exc.value.message_dict


@override_settings(EMAIL_BACKEND=LOCMEM)
def test_an_invitation_makes_an_account_and_mails_a_one_time_link(
    project, lead, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        m, path, mailed = member_invite(
            project=project,
            user=lead,
            username="nora",
            email="nora@example.com",
            role=Role.EVALUATOR,
            base_url="https://rateloop.example",
        )
    assert mailed and m.role == Role.EVALUATOR and not m.user.has_usable_password()
    assert len(mail.outbox) == 1 and f"https://rateloop.example{path}" in mail.outbox[0].body
    page = client.get(path, follow=True)
    assert page.status_code == 200 and b"Choose your password" in page.content
    assert b"at least 8 characters" in page.content and b"<li></li>" not in page.content
    form_url = page.redirect_chain[-1][0]
    done = client.post(
        form_url, {"new_password1": "a-long-pass-42", "new_password2": "a-long-pass-42"}
    )
    assert done.status_code == 302
    m.user.refresh_from_db()
    assert m.user.check_password("a-long-pass-42")
    again = client.get(path, follow=True)
    assert b"no longer works" in again.content  # one time only
    login = client.post("/login/", {"username": "nora", "password": "a-long-pass-42"})
    assert login.status_code == 302 and login["Location"] == "/"


@override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="")
def test_without_a_mail_server_the_link_is_only_shown(project, lead):
    _, path, mailed = member_invite(
        project=project, user=lead, username="omar", email="omar@example.com", role=Role.SME
    )
    assert not mailed and not mail.outbox and path.startswith("/account/set-password/")


@pytest.mark.parametrize("username", ["lead-taken", "LEAD-TAKEN", "", "bad name!"])
def test_an_invitation_refuses_taken_and_bad_usernames(project, lead, username):
    UserFactory(username="lead-taken")
    with pytest.raises(ValidationError) as exc:
        member_invite(project=project, user=lead, username=username, role=Role.EVALUATOR)
    assert "username" in exc.value.message_dict


def test_removing_a_member_keeps_their_judgments(project, lead, member):
    rubric_set(project=project, user=lead, criteria=[{"key": "ok", "anchors": ["Bad", "Good"]}])
    pairwise_conversation(project)
    from ratings.services.items import items_queue

    items_queue(project=project, user=lead, kinds=(TaskKind.SCORE,))
    project.gold_rate = 0
    project.save()
    rater = member(Role.EVALUATOR)
    a = assignment_next(project=project, rater=rater, kind=TaskKind.SCORE)
    judgment_submit(assignment=a, rater=rater, answer={"scores": {"ok": 2}})
    membership = Membership.objects.get(project=project, user=rater)
    assert member_remove(project=project, user=lead, membership_id=membership.pk) == rater
    assert not Membership.objects.filter(project=project, user=rater).exists()
    assert Judgment.objects.filter(rater=rater, item__project=project).count() == 1
    assert not Project.objects.visible_to(rater).exists()


def test_the_last_lead_cannot_be_removed_or_demoted(project, lead):
    own = Membership.objects.get(project=project, user=lead)
    with pytest.raises(ValidationError, match="only lead"):
        member_remove(project=project, user=lead, membership_id=own.pk)
    with pytest.raises(ValidationError, match="only lead"):
        member_role_change(project=project, user=lead, membership_id=own.pk, role=Role.SME)
    with pytest.raises(ValidationError, match="only lead"):
        member_add(project=project, user=lead, username=lead.username, role=Role.SME)
    second = UserFactory()
    member_add(project=project, user=lead, username=second.username, role=Role.LEAD)
    member_remove(project=project, user=lead, membership_id=own.pk)  # another lead remains
    assert not Membership.objects.filter(project=project, user=lead).exists()


def test_a_member_of_another_project_is_not_found(project, lead):
    other = project_create(user=creator(), values={"name": "Other"}, task_types=["score"])
    theirs = Membership.objects.get(project=other)
    with pytest.raises(ValidationError, match="No such member"):
        member_remove(project=project, user=lead, membership_id=theirs.pk)
    with pytest.raises(ValidationError, match="No such member"):
        member_role_change(project=project, user=lead, membership_id=theirs.pk, role=Role.SME)


@pytest.mark.parametrize("role", [Role.EVALUATOR, Role.SME, Role.CONSUMER, None])
def test_only_leads_manage_members(project, member, role):
    user = member(role) if role else UserFactory()
    target = Membership.objects.create(project=project, user=UserFactory(), role=Role.EVALUATOR)
    calls = [
        lambda: member_add(project=project, user=user, username=user.username, role=Role.LEAD),
        lambda: member_invite(project=project, user=user, username="x1", role=Role.LEAD),
        lambda: member_role_change(
            project=project, user=user, membership_id=target.pk, role=Role.LEAD
        ),
        lambda: member_remove(project=project, user=user, membership_id=target.pk),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    assert Membership.objects.get(pk=target.pk).role == Role.EVALUATOR


# Pages


def test_new_project_page(client):
    user = creator()
    client.force_login(user)
    assert b"New project" in client.get("/").content
    bad = client.post("/projects/new/", {"name": "", "overlap": 0, "gold_rate": 0.1})
    assert bad.status_code == 200
    assert set(bad.context["form"].errors) == {"name", "overlap", "task_types"}  # all at once
    done = client.post(
        "/projects/new/",
        {"name": "Bot", "task_types": ["score"], "overlap": 3, "gold_rate": 0.05},
    )
    assert done.status_code == 302 and done["Location"] == "/projects/bot/rubric/"


def test_new_project_page_refuses_users_who_may_not_create(client, member):
    client.force_login(member(Role.EVALUATOR))
    assert b"New project" not in client.get("/").content
    assert client.get("/projects/new/").status_code == 403
    assert client.post("/projects/new/", {"name": "X", "task_types": ["score"]}).status_code == 403
    assert not Project.objects.filter(name="X").exists()


def test_members_page_invites_and_shows_the_link(client, project, lead):
    client.force_login(lead)
    page = client.post(
        f"/projects/{project.slug}/members/",
        {"action": "invite", "invite-username": "pia", "invite-role": "evaluator"},
    )
    assert page.status_code == 200
    link = re.search(r'id="invite-link">([^<]+)<', page.content.decode()).group(1)
    assert link.startswith("http://testserver/account/set-password/")
    assert Membership.objects.get(project=project, user__username="pia").role == Role.EVALUATOR


def test_members_page_defaults_to_evaluator_and_refuses_removing_the_last_lead(
    client, project, lead
):
    client.force_login(lead)
    page = client.get(f"/projects/{project.slug}/members/").content.decode()
    assert '<option value="evaluator" selected>' in page
    own = Membership.objects.get(project=project, user=lead)
    refused = client.post(
        f"/projects/{project.slug}/members/",
        {"action": "remove", "membership": own.pk},
        follow=True,
    )
    assert "only lead" in refused.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()


@pytest.mark.parametrize("role", [Role.EVALUATOR, Role.SME, Role.CONSUMER])
def test_members_page_is_for_leads(client, project, lead, member, role):
    client.force_login(member(role))
    url = f"/projects/{project.slug}/members/"
    own = Membership.objects.get(project=project, user=lead)
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "remove", "membership": own.pk}).status_code == 403
    assert (
        client.post(
            url, {"action": "invite", "invite-username": "z", "invite-role": "lead"}
        ).status_code
        == 403
    )
    assert Membership.objects.filter(pk=own.pk).exists()


def test_a_non_member_gets_404_from_the_members_page(client, project):
    client.force_login(UserFactory())
    assert client.get(f"/projects/{project.slug}/members/").status_code == 404


# The other set-up pages: who may open them, and the rubric form's errors


@pytest.mark.parametrize("role", [Role.EVALUATOR, Role.SME, Role.CONSUMER])
def test_set_up_pages_are_for_leads(client, project, member, role):
    client.force_login(member(role))
    for url in ("rubric/", "rubric.yaml", "imports/", "settings/"):
        assert client.get(f"/projects/{project.slug}/{url}").status_code == 403, url
    posted = client.post(
        f"/projects/{project.slug}/rubric/",
        {"action": "yaml", "rubric": "- key: a\n  anchors: [Low, High]\n"},
    )
    assert posted.status_code == 403
    assert not project.rubrics.exists()


def test_set_up_pages_are_not_found_for_non_members(client, project):
    client.force_login(UserFactory())
    for url in ("rubric/", "rubric.yaml", "imports/", "members/"):
        assert client.get(f"/projects/{project.slug}/{url}").status_code == 404, url


def rubric_post(**rows):
    data = {"action": "save", "form-TOTAL_FORMS": "2", "form-INITIAL_FORMS": "0"}
    for i, row in rows.items():
        data.update({f"form-{i}-{k}": v for k, v in row.items()})
    return data


def test_the_rubric_form_shows_each_criterions_errors_at_once(client, project, lead):
    client.force_login(lead)
    page = client.post(
        f"/projects/{project.slug}/rubric/",
        rubric_post(
            **{
                "0": {"label": "Helpfulness", "scale": "likert", "points": "5"},
                "1": {"label": "Tone", "scale": "single_choice", "options": "rude"},
            }
        ),
    )
    assert page.status_code == 200 and not project.rubrics.exists()
    forms = page.context["formset"].forms
    assert "end points" in forms[0].errors["anchors"][0]
    assert "two options" in forms[1].errors["options"][0]


def test_the_rubric_form_saves_and_downloads_as_yaml(client, project, lead):
    client.force_login(lead)
    saved = client.post(
        f"/projects/{project.slug}/rubric/",
        rubric_post(
            **{
                "0": {
                    "label": "Helpfulness",
                    "scale": "likert",
                    "points": "3",
                    "anchors": "Bad\nGood",
                    "required": "on",
                    "applies_to": "score",
                },
            }
        ),
    )
    assert saved.status_code == 302
    criterion = project.rubrics.get().criteria.get()
    assert (criterion.key, criterion.anchors, criterion.required) == (
        "helpfulness",
        ["Bad", "", "Good"],
        True,
    )
    download = client.get(f"/projects/{project.slug}/rubric.yaml")
    assert download["Content-Disposition"].endswith(f'{project.slug}-rubric.yaml"')
    assert b"key: helpfulness" in download.content


def test_explicit_score_items_wait_for_a_rubric(project, lead):
    from ratings.services.items import items_queue

    project.has_pairwise = True
    project.save()
    pairwise_conversation(project)
    with pytest.raises(ValidationError, match="Score items need a rubric"):
        items_queue(project=project, user=lead, kinds=(TaskKind.SCORE,))
    counts = items_queue(project=project, user=lead)  # everything: score items left out
    assert counts == {TaskKind.PAIRWISE: 1}


def test_a_blank_new_criterion_is_left_out(client, project, lead):
    client.force_login(lead)
    blank = {"scale": "likert", "points": "5", "required": "on", "applies_to": "score"}
    first = {"label": "Clear", "anchors": "No\nYes", **blank}
    saved = client.post(
        f"/projects/{project.slug}/rubric/", rubric_post(**{"0": first, "1": blank})
    )
    assert saved.status_code == 302
    assert [c.key for c in project.rubrics.get().criteria.all()] == ["clear"]
