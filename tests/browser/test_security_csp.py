"""The Content-Security-Policy blocks nothing the pages need: Chromium reports no violation on
the pages a lead and a rater use, and the API docs (Swagger UI) still draw the API."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _watch_csp(page) -> list[str]:
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return violations


def test_logging_in_through_the_form_and_using_the_pages_breaks_no_policy(
    page, rated_project, lead
):
    violations = _watch_csp(page)
    page.goto("/login/")
    page.get_by_label("User name").fill(lead.username)
    page.get_by_label("Password").fill("pw")  # tests.factories.UserFactory's
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    slug = rated_project.slug
    for path in (
        f"/projects/{slug}/",
        f"/projects/{slug}/rate/score/",
        f"/projects/{slug}/guidelines/",
        f"/projects/{slug}/mine/",
        f"/projects/{slug}/quality/",
        f"/projects/{slug}/settings/",
        f"/projects/{slug}/exports/",
        f"/projects/{slug}/reports/leaderboard/",
    ):
        response = page.goto(path)
        assert response.status == 200, path
        assert "Content-Security-Policy" in {k.title(): v for k, v in response.headers.items()}
        page.wait_for_load_state("load")
    assert violations == []


def test_the_api_docs_draw_the_api_under_the_policy(page, login_as, lead):
    violations = _watch_csp(page)
    login_as(page, lead)
    page.goto("/api/v1/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert violations == []
