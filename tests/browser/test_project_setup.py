"""A lead runs a project from the web UI, in a real browser: a new project, the rubric
editor, members (invitation with a one-time link, roles, removal), API tokens on the
profile page, the queue guard, the import history and the styled error pages."""

import re

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from accounts.models import ApiToken
from conversations.models import ImportJob, Membership, Project, Role
from conversations.services.projects import membership_set
from ratings.models import Rubric
from tests.factories import ProjectFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def creator(lead):
    lead.user_permissions.add(Permission.objects.get(codename="add_project"))
    return lead


def field(page, fieldset, name):
    return fieldset.locator(f"[name$='-{name}']")


def test_a_lead_creates_a_project_and_edits_its_rubric(page, login_as, creator):
    login_as(page, creator)
    page.goto("/")
    page.get_by_role("link", name="New project").click()
    page.get_by_role("button", name="Create project").click()  # nothing filled in
    expect(page.locator(".errorlist")).to_have_count(1)  # the name; the defaults stand
    page.get_by_label("Name").fill("Support bot")
    page.get_by_label("Overlap").fill("0")
    page.get_by_label("Pairwise preference").uncheck()
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#id_overlap + .errorlist, .errorlist")).to_contain_text("1")
    page.get_by_label("Overlap").fill("2")
    page.get_by_role("button", name="Create project").click()
    expect(page).to_have_url(re.compile(r"/projects/support-bot/rubric/$"))
    project = Project.objects.get(slug="support-bot")
    assert (project.overlap, project.has_scoring, project.has_pairwise) == (2, True, False)
    assert Membership.objects.get(project=project).user == creator

    # A Likert criterion without anchors is refused next to its anchors, with its label.
    first = page.locator("fieldset.criterion").nth(0)
    field(page, first, "label").fill("Helpfulness")
    page.get_by_role("button", name="Add a criterion").click()
    expect(page.locator("fieldset.criterion")).to_have_count(2)
    first = page.locator("fieldset.criterion").nth(0)
    second = page.locator("fieldset.criterion").nth(1)
    field(page, second, "label").fill("Tone")
    field(page, second, "scale").select_option("single_choice")
    field(page, second, "options").fill("rude")
    page.get_by_role("button", name="Save rubric").click()
    first = page.locator("fieldset.criterion").nth(0)
    second = page.locator("fieldset.criterion").nth(1)
    expect(first.locator(":scope > legend")).to_contain_text("Helpfulness")
    expect(first).to_contain_text("needs anchors for its end points")
    expect(second).to_contain_text("at least two options")  # both errors at once
    assert not Rubric.objects.filter(project=project).exists()

    field(page, first, "anchors").fill("Useless\nExcellent")
    field(page, second, "options").fill("rude\nneutral\nwarm")
    page.get_by_role("button", name="Save rubric").click()
    expect(page.locator(".flash")).to_contain_text("Rubric saved")
    criteria = Rubric.objects.get(project=project).criteria.all()
    assert [(c.key, c.anchors) for c in criteria][0] == (
        "helpfulness",
        ["Useless", "", "", "", "Excellent"],
    )
    assert [c.key for c in criteria] == ["helpfulness", "tone"]

    # Remove a criterion; export the YAML.
    page.locator("fieldset.criterion").nth(1).get_by_label("Delete").check()
    page.get_by_role("button", name="Save rubric").click()
    expect(page.locator(".flash")).to_contain_text("1 criteria")
    assert [c.key for c in Rubric.objects.get(project=project).criteria.all()] == ["helpfulness"]
    page.get_by_text("YAML import and export").click()
    expect(page.get_by_label("Rubric as YAML")).to_have_value(re.compile("key: helpfulness"))


def test_score_items_wait_for_a_rubric_and_dates_are_picked(page, login_as, lead):
    project = ProjectFactory(name="Fresh", has_pairwise=False)
    membership_set(project=project, user=lead, role=Role.LEAD)
    login_as(page, lead)
    page.goto(f"/projects/{project.slug}/settings/")
    expect(page.get_by_test_id("needs-rubric")).to_be_visible()
    assert page.get_by_label("Conversations from").get_attribute("type") == "date"
    assert page.get_by_label("Conversations to").get_attribute("type") == "date"
    page.get_by_label("Conversations from").fill("2026-03-02")
    page.get_by_label("Conversations to").fill("2026-03-01")
    page.get_by_role("button", name="Queue items").click()
    expect(page.locator("#queue")).to_contain_text("The last day comes before the first")
    page.get_by_label("Conversations to").fill("2026-03-05")
    page.get_by_role("button", name="Queue items").click()
    expect(page.locator("#queue .errorlist")).to_contain_text("Score items need a rubric")


def test_a_lead_invites_a_rater_who_sets_a_password_and_logs_in(
    new_page, login_as, lead, rated_project
):
    page = login_as(new_page(), lead)
    page.goto(f"/projects/{rated_project.slug}/members/")
    invite = page.locator("#invite")
    expect(invite.get_by_label("Role")).to_have_value("evaluator")  # the default
    invite.get_by_label("User name").fill("nora")
    invite.get_by_role("button", name="Invite").click()
    link = page.locator("#invite-link").inner_text()
    assert "/account/set-password/" in link
    expect(page.locator("tr[data-member=nora]")).to_contain_text("no password yet")

    newcomer = new_page()
    newcomer.goto(link)
    expect(newcomer.get_by_role("heading")).to_have_text("Choose your password")
    newcomer.locator("#id_new_password1").fill("a-long-pass-42")
    newcomer.locator("#id_new_password2").fill("a-long-pass-42")
    newcomer.get_by_role("button", name="Set password").click()
    expect(newcomer.locator(".flash")).to_contain_text("Password set")
    newcomer.get_by_label("User name").fill("nora")
    newcomer.get_by_label("Password").fill("a-long-pass-42")
    newcomer.get_by_role("button", name="Log in").click()
    expect(newcomer.locator(f"[data-project={rated_project.slug}] .badge")).to_have_text(
        "evaluator"
    )
    expect(newcomer.get_by_role("link", name="Admin")).to_have_count(0)  # not staff
    newcomer.goto(link)
    expect(newcomer.get_by_role("heading")).to_have_text("This link no longer works")

    # The lead changes the role, then removes the member.
    row = page.locator("tr[data-member=nora]")
    page.reload()
    row.get_by_label("Role of nora").select_option("sme")
    row.get_by_role("button", name="Change role").click()
    expect(page.locator(".flash")).to_contain_text("nora is now Subject-matter expert")
    page.locator("tr[data-member=nora]").get_by_role("button", name="Remove nora").click()
    expect(page.locator(".flash")).to_contain_text("their judgments are kept")
    expect(page.locator("tr[data-member=nora]")).to_have_count(0)
    own = page.locator("tr[data-member=lena-lead]")
    own.get_by_role("button", name="Remove lena-lead").click()
    expect(page.locator(".flash")).to_contain_text("only lead")


def test_any_user_makes_uses_and_revokes_an_api_token(page, login_as):
    user = UserFactory(username="tom")
    login_as(page, user)
    page.goto("/")
    page.get_by_role("link", name="My account").click()
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#tokens .errorlist")).to_contain_text("required")
    page.get_by_label("Name").fill("notebook")
    page.get_by_role("button", name="Create token").click()
    key = page.locator("#new-token-key").inner_text()
    headers = {"Authorization": f"Token {key}"}
    assert page.request.get("/api/v1/projects/", headers=headers).status == 200
    page.reload()  # the key is not shown again; the last use is
    expect(page.locator("#new-token-key")).to_have_count(0)
    expect(page.locator("#token-list")).to_contain_text("notebook")
    expect(page.locator("#token-list")).not_to_contain_text("never")
    page.get_by_role("button", name="Revoke notebook").click()
    expect(page.locator(".flash")).to_contain_text("Token revoked")
    assert not ApiToken.objects.exists()
    refused = page.request.get("/api/v1/projects/", headers=headers)
    assert refused.status == 401 and refused.headers["www-authenticate"] == "Token"


def test_error_pages_are_styled_with_navigation(page, login_as, rater, rated_project):
    login_as(page, rater)
    forbidden = page.goto(f"/projects/{rated_project.slug}/settings/")
    assert forbidden.status == 403
    expect(page.get_by_test_id("error-page")).to_contain_text("You cannot do this here")
    expect(page.get_by_role("link", name="My projects").first).to_be_visible()
    missing = page.goto("/projects/no-such-project/members/")
    assert missing.status == 404
    expect(page.get_by_test_id("error-page")).to_contain_text("Page not found")
    page.get_by_role("link", name="← My projects").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_the_admin_link_is_only_for_users_who_can_use_the_admin(page, login_as, lead):
    login_as(page, lead)
    page.goto("/")
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)  # a project lead
    lead.is_staff = True
    lead.save()
    page.reload()  # staff with no admin permission: the admin would show nothing
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    lead.user_permissions.add(Permission.objects.get(codename="view_project"))
    page.reload()
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("link", name="Projects")).to_be_visible()


def test_import_history_lists_a_projects_imports(page, login_as, lead, rated_project):
    for name in ("first.jsonl", "second.jsonl"):
        ImportJob.objects.create(project=rated_project, created_by=lead, original_name=name)
    job = ImportJob.objects.get(original_name="first.jsonl")
    login_as(page, lead)
    page.goto(f"/imports/{job.pk}/")
    page.get_by_role("link", name=re.compile("imports$")).click()
    expect(page).to_have_url(re.compile(rf"/projects/{rated_project.slug}/imports/$"))
    rows = page.locator("#import-history tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("second.jsonl")  # newest first


def test_the_rating_form_marks_every_missing_answer_next_to_its_criterion(
    page, login_as, rater, rated_project
):
    login_as(page, rater)
    page.goto(f"/projects/{rated_project.slug}/rate/score/")
    page.get_by_test_id("submit").click()
    summary = page.get_by_test_id("errors")
    expect(summary).to_contain_text("2 answers need your attention")
    expect(summary.locator("li")).to_have_text(["Helpfulness is required", "Accuracy is required"])
    expect(summary).not_to_contain_text("scores.")  # no internal names
    for key, label in (("helpfulness", "Helpfulness"), ("accuracy", "Accuracy")):
        fieldset = page.locator(f"fieldset[data-criterion={key}]")
        expect(fieldset.locator(".field-error")).to_have_text(f"{label} is required")
    expect(page.locator("fieldset[data-criterion=tone] .field-error")).to_have_count(0)
