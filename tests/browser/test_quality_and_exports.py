"""The lead's quality dashboard, the exports page and the reports, in a real browser."""

import re
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conversations.models import Message, Role
from conversations.services.projects import membership_set
from exports.models import ExportJob
from ratings.models import Item, Judgment, TaskKind
from ratings.services.items import items_queue
from ratings.services.quality import quality_compute
from ratings.services.rubrics import rubric_set
from tests.factories import ProjectFactory, UserFactory, pairwise_conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def judged_project(lead):
    project = ProjectFactory(name="Judged", overlap=3, gold_rate=0, has_scoring=False)
    membership_set(project=project, user=lead, role=Role.LEAD)
    rubric_set(
        project=project,
        user=lead,
        criteria=[{"key": "helpfulness", "points": 5, "anchors": ["Poor", "Excellent"]}],
    )
    for i in range(20):
        pairwise_conversation(project, external_id=f"c{i}")
    items_queue(project=project, user=lead)
    raters = []
    for i in range(4):
        user = UserFactory(username=f"judge{i}")
        membership_set(project=project, user=user, role=Role.EVALUATOR)
        raters.append(user)
    rng = np.random.default_rng(3)
    start = timezone.now() - timedelta(days=5)
    for n, item in enumerate(
        Item.objects.filter(project=project, kind=TaskKind.PAIRWISE).order_by("id")
    ):
        for r, rater in enumerate(raters):
            pref = int(rng.integers(-2, 3)) if r == 3 else -1
            Judgment.objects.create(
                item=item,
                rater=rater,
                preference=pref,
                left_is_a=bool(rng.integers(2)),
                created_at=start + timedelta(hours=n * 4 + r),
            )
    quality_compute(project_id=project.pk, n_boot=50)
    return project, raters


def test_dashboard_draws_charts_and_sorts_the_rater_table(page, login_as, lead, judged_project):
    project, raters = judged_project
    login_as(page, lead)
    page.goto(f"/projects/{project.slug}/quality/")
    chart = page.locator("[data-testid=agreement-chart] svg.line-chart")
    assert chart.is_visible() and chart.bounding_box()["width"] > 300
    assert page.locator("svg.heatmap rect.cell").count() == 9  # A better / tie / B better
    # round ticks inside the metric's range, axis titles, end labels inside the chart
    ticks = [float(t) for t in chart.locator("text.tick").all_text_contents() if "-" not in t[1:]]
    assert ticks and all(-1 <= t <= 1 and round(t, 2) == t for t in ticks)
    assert chart.locator("text.axis-title").all_text_contents() == ["Date", "Agreement"]
    dates = chart.locator("text.tick", has_text=re.compile(r"^\d{4}-\d\d-\d\d$"))
    assert dates.first.get_attribute("text-anchor") == "start"  # drawn inwards: not clipped
    heatmap = page.locator("svg.heatmap").first
    assert heatmap.locator("rect.scale").count() == 10  # the colour scale
    expect(page.get_by_test_id("too-few")).to_have_count(0)  # 20 items: enough
    title = page.locator(".charts-grid figcaption").first.inner_text()
    assert title == "Rater-pair coincidences: Pairwise: overall preference"
    table = page.locator("[data-testid=rater-table]")

    def names():
        return table.locator("tbody tr td:first-child").all_inner_texts()

    assert sorted(names()) == sorted(r.username for r in raters)
    table.locator("th", has_text="Agreement").click()
    ascending = names()
    assert ascending[0] == "judge3"  # the random rater agrees least
    table.locator("th", has_text="Agreement").click()
    assert names()[-1] == "judge3"
    page.get_by_role("link", name="judge3").click()
    assert page.locator("[data-testid=rater-chart] svg").is_visible()


def test_lead_sends_a_contested_item_for_re_rating(page, login_as, lead, judged_project):
    project, _ = judged_project
    login_as(page, lead)
    page.goto(f"/projects/{project.slug}/quality/")
    page.locator("[data-testid=contested] a").first.click()
    item_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    page.get_by_role("button", name="Send for re-rating").click()
    page.wait_for_url(f"**/items/{item_id}/")
    assert Item.objects.get(pk=item_id).overlap == 5


def test_consumer_exports_and_downloads(page, login_as, judged_project):
    project, _ = judged_project
    consumer = UserFactory(username="trainer")
    membership_set(project=project, user=consumer, role=Role.CONSUMER)
    login_as(page, consumer)
    page.goto("/")
    page.get_by_role("link", name="Exports").click()
    page.select_option("select[name=format]", "trl-conversational")
    page.select_option("select[name=file_type]", "jsonl")
    page.get_by_role("button", name="Start export").click()
    jobs = page.locator("[data-testid=export-jobs]")
    jobs.get_by_text("succeeded").wait_for()
    job = ExportJob.objects.get()
    # the name says the project, the format and the job's time, so downloads never collide
    stem = f"{project.slug}-trl-conversational-{job.created_at:%Y%m%dT%H%M%SZ}-job{job.pk}"
    with page.expect_download() as download:
        jobs.get_by_role("link", name=f"{stem}.jsonl").click()
    assert download.value.suggested_filename == f"{stem}.jsonl"
    path = download.value.path()
    with open(path, encoding="utf-8") as f:
        assert sum(1 for _ in f) == job.rows_written > 0


def test_leaderboard_and_kb_pages_draw_charts(page, login_as, lead, judged_project):
    project, _ = judged_project
    # long model names, as real ones are: the head-to-head labels must not overlap
    for c, name in enumerate(["assistant-large-2025-06-01", "assistant-small-2025-06-01"]):
        Message.objects.filter(conversation__project=project, model=f"model-{c}").update(model=name)
    login_as(page, lead)
    page.goto(f"/projects/{project.slug}/reports/leaderboard/")
    assert page.locator("svg").first.is_visible()
    assert "assistant-large-2025-06-01" in page.content()
    heatmap = page.locator("svg.heatmap")
    assert heatmap.locator("rect.scale").count() == 10
    frame = heatmap.bounding_box()
    boxes = [t.bounding_box() for t in heatmap.locator("text.tick").all()]
    for b in boxes:  # every label inside the chart
        assert frame["x"] - 1 <= b["x"] and b["x"] + b["width"] <= frame["x"] + frame["width"] + 1
        assert frame["y"] - 1 <= b["y"] and b["y"] + b["height"] <= frame["y"] + frame["height"] + 1
    labels = [t.bounding_box() for t in heatmap.locator("text.col-label").all()]
    labels += [t.bounding_box() for t in heatmap.locator("text.row-label").all()]
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"] + 1
                or b["x"] + b["width"] <= a["x"] + 1
                or a["y"] + a["height"] <= b["y"] + 1
                or b["y"] + b["height"] <= a["y"] + 1
            )
            if not apart:  # slanted labels' boxes may touch; their ends must not
                assert abs(a["x"] - b["x"]) > 20 or abs(a["y"] - b["y"]) > 12
    expect(page.get_by_test_id("too-few")).to_have_count(0)

    # under the documented minimum of battles, a model's figure says so
    keep = list(Judgment.objects.filter(item__project=project).values_list("id", flat=True))
    Judgment.objects.filter(pk__in=keep[6:]).update(is_current=False)
    page.reload()
    expect(page.get_by_test_id("too-few").first).to_contain_text("too few battles")
    page.goto(f"/projects/{project.slug}/reports/kb/")
    assert page.get_by_role("heading").first.is_visible()


@pytest.mark.worker
def test_quality_page_refreshes_when_the_run_ends(page, login_as, lead, judged_project, worker):
    project, _ = judged_project
    newcomer = UserFactory(username="judge-new")
    membership_set(project=project, user=newcomer, role=Role.EVALUATOR)
    item = Item.objects.filter(project=project, kind=TaskKind.PAIRWISE).order_by("id").first()
    Judgment.objects.create(
        item=item, rater=newcomer, preference=-1, left_is_a=True, created_at=timezone.now()
    )  # the figures shown are now out of date
    before = Judgment.objects.filter(item__project=project).count() - 1
    login_as(page, lead)
    page.goto(f"/projects/{project.slug}/quality/")
    expect(page.get_by_text(f"on {before} judgments")).to_be_visible()

    page.get_by_test_id("run-quality").click()
    expect(page.get_by_test_id("quality-waiting")).to_be_visible()
    # the worker computes the run; the page polls its state and reloads by itself
    expect(page.get_by_text(f"on {before + 1} judgments")).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("quality-waiting")).to_have_count(0)
    assert "waiting" not in page.url
    assert worker.poll() is None


def test_quality_status_api_says_when_the_figures_are_current(judged_project, lead):
    from rest_framework.test import APIClient

    project, raters = judged_project
    client = APIClient()
    client.force_authenticate(lead)
    url = f"/api/v1/projects/{project.slug}/quality/run/"
    status = client.get(url).json()
    assert status["running"] is False and status["up_to_date"] is True
    assert status["latest_run"]["state"] == "succeeded"
    item = Item.objects.filter(project=project).order_by("id").first()
    Judgment.objects.create(item=item, rater=lead, preference=1, created_at=timezone.now())
    assert client.get(url).json()["up_to_date"] is False
    client.force_authenticate(raters[0])
    assert client.get(url).status_code == 403


def test_agreement_on_too_few_items_says_so(page, login_as, lead, judged_project, settings):
    project, _ = judged_project
    settings.QUALITY_MIN_SHARED_ITEMS = 50  # the judged project has 20 items
    login_as(page, lead)
    page.goto(f"/projects/{project.slug}/quality/")
    table = page.get_by_test_id("agreement-table")
    expect(table).to_contain_text("too few items (20 < 50)")
