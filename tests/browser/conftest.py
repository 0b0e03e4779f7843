"""Real-browser fixtures: one Chromium for the browser tests, a fresh context per test, data.

Chromium is Debian's (``/usr/bin/chromium``, or ``CHROMIUM_PATH``); Playwright's own browser
download is not used. Pages are served by pytest-django's ``live_server`` on a transactional
database, so data made here is visible to the server thread.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from conversations.models import KBReference, Role
from conversations.services.projects import membership_set
from ratings.models import TaskKind
from ratings.services.items import items_queue
from ratings.services.rubrics import rubric_set
from tests.factories import ProjectFactory, UserFactory, pairwise_conversation

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Generous, as they only bound how long a failing step waits: on a busy machine the first
# page the live server renders (imports, template compilation) can take several seconds.
TIMEOUT_MS = 15_000
NAVIGATION_TIMEOUT_MS = 30_000

RUBRIC = [
    {
        "key": "helpfulness",
        "label": "Helpfulness",
        "scale": "likert",
        "anchors": ["Useless", "Poor", "Adequate", "Good", "Excellent"],
        "applies_to": ["score", "pairwise"],
    },
    {"key": "accuracy", "label": "Accuracy", "scale": "binary"},
    {
        "key": "tone",
        "label": "Tone",
        "scale": "single_choice",
        "options": ["rude", "neutral", "warm"],
        "required": False,
    },
    {"key": "notes", "label": "Notes", "scale": "free_text", "required": False},
]
GUIDELINES = "# Rating guide\n\nPrefer the answer that **cites its source**."


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="package")
def browser():
    """One Chromium for the browser tests, closed before any other package's tests run."""
    # Playwright's sync API keeps an event loop running in this thread, which trips Django's
    # async-safety check on the ORM calls the tests make between browser steps (they are plain
    # synchronous calls). The check is off only while the browser is open.
    expect.set_options(timeout=TIMEOUT_MS)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser, live_server, request, tmp_path):
    """Open a page in a fresh browser context (own cookies); screenshots a failed test."""
    contexts = []

    def make(viewport=None):
        context = browser.new_context(
            base_url=live_server.url, viewport=viewport or {"width": 1280, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    report = getattr(request.node, "rep_call", None)
    for i, context in enumerate(contexts):
        if report is not None and report.failed:
            for j, page in enumerate(context.pages):
                shot = Path(tmp_path) / f"failure-{i}-{j}.png"
                try:
                    page.screenshot(path=str(shot), full_page=True, timeout=2_000)
                    print(f"screenshot of the failed page: {shot}")
                except PlaywrightError as exc:
                    print(f"no screenshot of the failed page: {exc.message}")
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def login_as(live_server):
    """Put a logged-in session cookie for ``user`` into the page's browser context."""

    def login(page, user):
        client = Client()
        client.force_login(user)
        page.context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        return page

    return login


@pytest.fixture
def lead(transactional_db):
    return UserFactory(username="lena-lead")


@pytest.fixture
def rated_project(lead):
    """Rubric, guidelines, overlap 1 (one judgment completes an item), no gold, and
    3 conversations with two candidates each: 6 score items and 3 pairs."""
    project = ProjectFactory(
        name="Support bot", overlap=1, gold_rate=0, guidelines=GUIDELINES, has_pairwise=True
    )
    membership_set(project=project, user=lead, role=Role.LEAD)
    rubric_set(project=project, user=lead, criteria=RUBRIC)
    for i in range(3):
        pairwise_conversation(project, external_id=f"conv-{i}")
    items_queue(project=project, user=lead, kinds=(TaskKind.SCORE, TaskKind.PAIRWISE))
    return project


@pytest.fixture
def rater(rated_project):
    user = UserFactory(username="rita-rater")
    membership_set(project=rated_project, user=user, role=Role.EVALUATOR)
    return user


@pytest.fixture
def kb_project(lead):
    """A project with KB verification: one answer citing article KB-42; an SME member."""
    project = ProjectFactory(
        name="KB bot", overlap=1, gold_rate=0, has_kb_verification=True, guidelines=GUIDELINES
    )
    membership_set(project=project, user=lead, role=Role.LEAD)
    conv = pairwise_conversation(project, n_candidates=1, external_id="kb-0")
    conv.messages.filter(role="user").update(content="How long do I have to return an item?")
    answer = conv.messages.get(role="assistant")
    answer.content = "You can return an item within 90 days."
    answer.save(update_fields=["content"])
    KBReference.objects.create(
        message=answer,
        article_id="KB-42",
        title="Return policy",
        snippet="Items can be returned within 30 days of delivery.",
    )
    items_queue(project=project, user=lead, kinds=(TaskKind.KB_VERIFY,))
    return project


@pytest.fixture
def sme(kb_project):
    user = UserFactory(username="sam-sme")
    membership_set(project=kb_project, user=user, role=Role.SME)
    return user
