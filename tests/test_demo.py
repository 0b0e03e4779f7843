"""The demo (``manage.py load_demo``) shows every role and page real content on the first
visit, stays idempotent, and leaves every demo role work to do."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Max, Min
from django.test import Client

from conversations.models import Message, Project
from exports.reports.leaderboard import leaderboard_report
from ratings.models import DriftFlag, Item, Judgment, QualityRun, TaskKind
from ratings.services.assignments import assignment_next

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    call_command("load_demo", force=True, stdout=StringIO())
    return Project.objects.get(slug="demo")


def user(name: str):
    return get_user_model().objects.get(username=name)


def test_load_demo_twice_changes_nothing(demo):
    counts = (
        Judgment.objects.count(),
        Item.objects.count(),
        Item.objects.filter(is_gold=True).count(),
        DriftFlag.objects.count(),
        QualityRun.objects.count(),
        Message.objects.exclude(model="").count(),
    )
    call_command("load_demo", force=True, stdout=StringIO())
    assert counts == (
        Judgment.objects.count(),
        Item.objects.count(),
        Item.objects.filter(is_gold=True).count(),
        DriftFlag.objects.count(),
        QualityRun.objects.count(),
        Message.objects.exclude(model="").count(),
    )


def test_the_first_visit_shows_every_role_and_page_real_content(demo):
    """One load, every check: loading takes seconds, so the checks share it."""
    # every role that rates finds work
    for name, kinds in [
        ("rater1", (TaskKind.SCORE, TaskKind.PAIRWISE)),
        ("rater2", (TaskKind.SCORE, TaskKind.PAIRWISE)),
        ("sme", (TaskKind.KB_VERIFY,)),
    ]:
        for kind in kinds:
            assert assignment_next(project=demo, rater=user(name), kind=kind) is not None, (
                name,
                kind,
            )

    # the SME's KB answers, a few verdicts given; the internal SMEs verified them all
    kb = Item.objects.filter(project=demo, kind=TaskKind.KB_VERIFY)
    assert kb.count() == 10
    assert kb.filter(response__kb_references__isnull=False).distinct().count() == 10
    verdicts = Judgment.objects.filter(rater=user("sme"), item__kind=TaskKind.KB_VERIFY)
    assert 1 <= verdicts.count() < 10
    assert verdicts.exclude(verdict="").count() == verdicts.count()
    internal_kb = Judgment.objects.filter(item__in=kb, rater__username__startswith="demo-sme-")
    assert internal_kb.values("item").distinct().count() == 10

    # weeks of history, gold, a quality run, and the drifting rater (only they) flagged
    internal = Judgment.objects.filter(item__project=demo, rater__username__startswith="demo-")
    span = internal.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert span["last"] - span["first"] > timedelta(weeks=5)
    assert Item.objects.filter(project=demo, is_gold=True).count() >= 10
    run = QualityRun.objects.filter(project=demo).first()
    assert run is not None and run.state == "succeeded"
    flagged = set(DriftFlag.objects.filter(project=demo).values_list("rater__username", flat=True))
    assert flagged == {"demo-drifter"}

    # the leaderboard ranks at least three models
    board = leaderboard_report(project=demo, n_boot=50)
    assert board.status == "ok"
    assert len([r for r in board.rows if r["rank"] is not None]) >= 3

    # and the pages show it
    client = Client()
    for who, page, shows in [
        ("lead", "/projects/demo/quality/", "demo-drifter"),
        ("lead", "/projects/demo/reports/kb/", "KB-101"),
        ("lead", "/projects/demo/reports/leaderboard/", "aurora-large"),
        ("sme", "/projects/demo/mine/", "Incorrect"),
    ]:
        client.force_login(user(who))
        response = client.get(page)
        assert response.status_code == 200, page
        assert shows in response.content.decode(), (page, shows)
