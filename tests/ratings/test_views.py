"""The rater web UI through Django's test client (the browser tests drive the same pages)."""

import re

import pytest

from conversations.models import KBReference, Message, Role
from ratings.models import Judgment, TaskKind
from ratings.services.items import items_queue
from tests.factories import UserFactory, pairwise_conversation

pytestmark = pytest.mark.django_db


def test_home_lists_my_queues(client, rated_project, raters):
    client.force_login(raters[0])
    page = client.get("/").content.decode()
    assert rated_project.name in page
    assert (
        'data-testid="remaining-score">8<' in page and 'data-testid="remaining-pairwise">4<' in page
    )


def test_home_offers_only_the_kinds_the_project_runs(client, rated_project, lead, member):
    sme = member(Role.SME)
    assert not rated_project.has_kb_verification
    for user in (lead, sme):
        client.force_login(user)
        page = client.get("/").content.decode()
        assert 'data-kind="pairwise"' in page
        assert 'data-kind="kb_verify"' not in page and "Verify KB answers" not in page
    rated_project.has_kb_verification = True
    rated_project.save()
    assert 'data-testid="remaining-kb_verify">0<' in client.get("/").content.decode()


def test_score_a_response_and_get_the_next(client, rated_project, raters):
    client.force_login(raters[0])
    page = client.get(f"/projects/{rated_project.slug}/rate/score/")
    html = page.content.decode()
    assert "Useless" in html and "Excellent" in html  # anchor texts
    assert "model-0" not in html and "model-1" not in html  # model names hidden
    assignment = raters[0].assignments.get()
    response = client.post(
        f"/assignments/{assignment.pk}/submit/",
        {"score-helpfulness": "4", "score-accuracy": "yes", "time_on_task_ms": "5300"},
    )
    assert response.status_code == 302
    judgment = Judgment.objects.get()
    assert judgment.time_on_task_ms == 5300
    assert {s.criterion.key: s.value for s in judgment.scores.all()} == {
        "helpfulness": 4.0,
        "accuracy": 1.0,
    }


def test_missing_required_score_shows_the_error_and_keeps_input(client, rated_project, raters):
    client.force_login(raters[0])
    client.get(f"/projects/{rated_project.slug}/rate/score/")
    assignment = raters[0].assignments.get()
    response = client.post(
        f"/assignments/{assignment.pk}/submit/", {"score-helpfulness": "4", "rationale": "keep me"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "scores.accuracy" in html and "keep me" in html
    assert Judgment.objects.count() == 0


def test_compare_a_pair_with_sides_mapped_back(client, rated_project, raters):
    client.force_login(raters[0])
    client.get(f"/projects/{rated_project.slug}/rate/pairwise/")
    a = raters[0].assignments.get()
    client.post(f"/assignments/{a.pk}/submit/", {"choice": "left_much_better", "both_bad": "on"})
    j = Judgment.objects.get()
    assert j.preference == (-2 if a.left_is_a else 2) and j.both_bad


def test_transcript_text_is_escaped(client, project, lead, member):
    conv = pairwise_conversation(project)
    Message.objects.filter(conversation=conv, role="user").update(
        content="<script>alert('x')</script> **bold** <img src=x onerror=alert(1)>"
    )
    items_queue(project=project, user=lead, kinds=(TaskKind.PAIRWISE,))
    rater = member(Role.EVALUATOR)
    client.force_login(rater)
    html = client.get(f"/projects/{project.slug}/rate/pairwise/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html and "<strong>bold</strong>" in html


def test_skip_needs_a_reason_and_moves_on(client, rated_project, raters):
    client.force_login(raters[0])
    client.get(f"/projects/{rated_project.slug}/rate/pairwise/")
    a = raters[0].assignments.get()
    assert client.post(f"/assignments/{a.pk}/skip/", {"reason": ""}).status_code == 400
    assert client.post(f"/assignments/{a.pk}/skip/", {"reason": "off topic"}).status_code == 302
    a.refresh_from_db()
    assert a.state == "skipped" and a.skip_reason == "off topic"


def test_edit_makes_a_new_version(client, rated_project, raters):
    client.force_login(raters[0])
    client.get(f"/projects/{rated_project.slug}/rate/score/")
    a = raters[0].assignments.get()
    client.post(f"/assignments/{a.pk}/submit/", {"score-helpfulness": "2", "score-accuracy": "no"})
    j = Judgment.objects.get()
    form = client.get(f"/judgments/{j.pk}/edit/").content.decode()
    assert 'value="2" checked' in form
    client.post(f"/judgments/{j.pk}/edit/", {"score-helpfulness": "5", "score-accuracy": "yes"})
    assert list(Judgment.objects.order_by("version").values_list("version", "is_current")) == [
        (1, False),
        (2, True),
    ]
    other = UserFactory()
    client.force_login(other)
    assert client.get(f"/judgments/{j.pk}/edit/").status_code == 404


def test_sme_page_shows_cited_passages(client, project, lead, member):
    project.has_kb_verification = True
    project.save()
    conv = pairwise_conversation(project, n_candidates=1)
    KBReference.objects.create(
        message=conv.messages.get(role="assistant"),
        article_id="KB-7",
        title="Capitals of Europe",
        snippet="Paris is the capital of France.",
    )
    items_queue(project=project, user=lead, kinds=(TaskKind.KB_VERIFY,))
    sme = member(Role.SME)
    client.force_login(sme)
    html = client.get(f"/projects/{project.slug}/rate/kb_verify/").content.decode()
    assert "Capitals of Europe" in html and "Paris is the capital of France." in html
    a = sme.assignments.get()
    client.post(
        f"/assignments/{a.pk}/submit/",
        {"verdict": "incomplete", "missing_fact": "Population", "kb-issue-KB-7": "outdated"},
    )
    j = Judgment.objects.get()
    assert (j.verdict, j.missing_fact, j.kb_issues) == (
        "incomplete",
        "Population",
        [{"article_id": "KB-7", "problem": "outdated"}],
    )


def test_lead_page_shows_progress_and_others_cannot(client, rated_project, raters, lead):
    client.force_login(lead)
    html = client.get(f"/projects/{rated_project.slug}/").content.decode()
    assert 'data-kind="pairwise"' in html
    client.force_login(raters[0])
    assert client.get(f"/projects/{rated_project.slug}/").status_code == 403


def test_project_pages_link_to_what_the_role_may_open(client, rated_project, lead, member):
    slug = rated_project.slug
    client.force_login(lead)
    overview = client.get(f"/projects/{slug}/").content.decode()
    links = set(re.findall(r'class="project-links">(.*?)</p>', overview, re.S))
    hrefs = sorted(set(re.findall(r'href="([^"]+)"', "".join(links))))
    assert f"/projects/{slug}/settings/" in hrefs and f"/projects/{slug}/quality/" in hrefs
    # exports, leaderboard, KB report, quality, overview, set-up, rubric, members, import,
    # import history, judgment import
    assert len(hrefs) == 11
    for href in hrefs:
        assert client.get(href).status_code == 200, href
    consumer = member(Role.CONSUMER)
    client.force_login(consumer)
    home = client.get("/").content.decode()
    assert "Exports</a>" in home and "Model leaderboard</a>" in home
    assert f"/projects/{slug}/settings/" not in home and "Quality</a>" not in home


def test_consumer_cannot_open_the_rating_page(client, rated_project, member):
    client.force_login(member(Role.CONSUMER))
    assert client.get(f"/projects/{rated_project.slug}/rate/score/").status_code == 403


def test_other_raters_assignments_are_invisible(client, rated_project, raters):
    client.force_login(raters[0])
    client.get(f"/projects/{rated_project.slug}/rate/score/")
    a = raters[0].assignments.get()
    client.force_login(raters[1])
    assert (
        client.post(
            f"/assignments/{a.pk}/submit/", {"score-helpfulness": "4", "score-accuracy": "yes"}
        ).status_code
        == 404
    )


def test_a_repeated_submit_goes_to_the_next_item(client, rated_project, raters):
    client.force_login(raters[0])
    client.get(f"/projects/{rated_project.slug}/rate/score/")
    a = raters[0].assignments.get()
    answer = {"score-helpfulness": "4", "score-accuracy": "yes"}
    assert client.post(f"/assignments/{a.pk}/submit/", answer).status_code == 302
    again = client.post(f"/assignments/{a.pk}/submit/", answer)
    assert again.status_code == 302 and Judgment.objects.count() == 1


def test_remaining_counts_my_own_live_lease(client, rated_project, raters):
    client.force_login(raters[0])
    before = client.get("/").content.decode()
    client.get(f"/projects/{rated_project.slug}/rate/score/")  # leases one item
    after = client.get("/").content.decode()
    assert (
        'data-testid="remaining-score">8<' in before and 'data-testid="remaining-score">8<' in after
    )
