"""Imported history counts for quality when the team says so (issue 14, point 1)."""

import io
import json
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from conversations.models import Role
from ratings.metrics import krippendorff_alpha
from ratings.models import (
    AgreementSnapshot,
    Item,
    Judgment,
    JudgmentImportJob,
    QualityRun,
    RaterQuality,
)
from ratings.services.judgment_import import JudgmentImportFailed, judgment_import
from ratings.services.quality import quality_compute
from ratings.services.rubrics import rubric_set
from tests.factories import ConversationFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db

RATERS = ("team:ann", "team:ben", "team:cy")
N_CONVERSATIONS = 10


@pytest.fixture
def history(project, lead):
    """Ten conversations of two answers each, and a file of three raters scoring all twenty."""
    rubric_set(
        project=project,
        user=lead,
        criteria=[{"key": "helpfulness", "points": 5, "anchors": ["Poor", "Excellent"]}],
    )
    records = []
    for c in range(N_CONVERSATIONS):
        conv = ConversationFactory(project=project, external_id=f"h{c}")
        MessageFactory(conversation=conv, position=0, content="Question?")
        for k, suffix in enumerate("ab"):
            MessageFactory(
                conversation=conv,
                position=1,
                candidate=k,
                role="assistant",
                content=f"Answer {suffix}",
                external_id=f"h{c}-{suffix}",
            )
            for r, rater in enumerate(RATERS):
                records.append(
                    {
                        "id": f"{rater}:{c}{suffix}",
                        "source": "oldtool",
                        "conversation_id": f"h{c}",
                        "response_id": f"h{c}-{suffix}",
                        "rater": rater,
                        "created_at": f"2024-05-{1 + c:02d}T09:{10 + r:02d}:00Z",
                        "scores": {"helpfulness": 1 + (c + k + (r == 2)) % 5},
                        "time_on_task_ms": 30_000,
                    }
                )
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def run_import(project, data: bytes, **kwargs):
    return judgment_import(
        project=project, stream=io.BytesIO(data), source_name="history.jsonl", **kwargs
    )


def expected_alpha(project) -> float:
    rows: dict[int, dict[int, float]] = {}
    for j in Judgment.objects.filter(item__project=project).prefetch_related("scores"):
        rows.setdefault(j.rater_id, {})[j.item_id] = j.scores.get().value
    items = sorted({i for r in rows.values() for i in r})
    return krippendorff_alpha([[r.get(i) for i in items] for r in rows.values()], "interval")


def test_without_the_choice_imported_history_stays_out_of_quality(history, project):
    summary = run_import(project, history)
    assert summary.imported == 3 * 2 * N_CONVERSATIONS
    run = quality_compute(project_id=project.pk, n_boot=0)
    assert not RaterQuality.objects.filter(run=run).exists()
    assert not AgreementSnapshot.objects.filter(run=run).exists()
    assert not Judgment.objects.filter(counts_for_quality=True).exists()


def test_with_the_choice_it_counts_like_judgments_made_here(history, project):
    summary = run_import(project, history, count_for_quality=True)
    assert summary.imported == 3 * 2 * N_CONVERSATIONS
    judgments = Judgment.objects.filter(item__project=project)
    assert all(j.is_external and j.counts_for_quality for j in judgments)
    assert {j.source for j in judgments} == {"oldtool"}
    gold = Item.objects.filter(project=project).order_by("id").first()
    Item.objects.filter(pk=gold.pk).update(is_gold=True, gold_answer={"scores": {"helpfulness": 2}})
    run = quality_compute(project_id=project.pk, n_boot=0)
    rows = RaterQuality.objects.filter(run=run)
    assert {r.rater.username for r in rows} == set(RATERS)
    assert all(r.n_judgments == 2 * N_CONVERSATIONS and r.gold_n == 1 for r in rows)
    alpha = AgreementSnapshot.objects.get(
        run=run, kind="score", criterion="helpfulness", metric="alpha_interval"
    )
    assert alpha.value == pytest.approx(expected_alpha(project))


def test_importing_the_same_file_twice_changes_nothing(history, project):
    run_import(project, history, count_for_quality=True)
    first = quality_compute(project_id=project.pk, n_boot=0)
    again = run_import(project, history, count_for_quality=True)
    assert (again.imported, again.duplicates) == (0, 3 * 2 * N_CONVERSATIONS)
    unchanged = run_import(project, history)  # the other choice: still duplicates
    assert unchanged.imported == 0
    assert Judgment.objects.filter(counts_for_quality=True).count() == 3 * 2 * N_CONVERSATIONS
    assert quality_compute(project_id=project.pk, n_boot=0).pk == first.pk  # nothing new
    assert QualityRun.objects.count() == 1


def test_a_members_own_history_may_use_their_user_name_only_with_the_choice(
    history, project, member
):
    ann = member(Role.EVALUATOR)
    mine = history.replace(b'"team:ann"', json.dumps(ann.username).encode())
    with pytest.raises(JudgmentImportFailed, match="internal user"):
        run_import(project, mine)
    summary = run_import(project, mine, count_for_quality=True)
    assert Judgment.objects.filter(rater=ann).count() == 2 * N_CONVERSATIONS
    assert summary.raters_created == 2


def test_a_user_outside_the_project_is_refused_even_with_the_choice(history, project):
    outsider = UserFactory()
    theirs = history.replace(b'"team:ann"', json.dumps(outsider.username).encode())
    with pytest.raises(JudgmentImportFailed, match="internal user"):
        run_import(project, theirs, count_for_quality=True)


def test_the_command_the_api_and_the_page_offer_the_choice(
    history, project, lead, client, tmp_path, django_capture_on_commit_callbacks
):
    path = tmp_path / "history.jsonl"
    path.write_bytes(history)
    out = StringIO()
    call_command(
        "import_judgments", str(path), project=project.slug, count_for_quality=True, stdout=out
    )
    assert "imported 60" in out.getvalue()
    assert Judgment.objects.filter(counts_for_quality=True).count() == 60
    api = APIClient()
    api.force_authenticate(lead)
    url = f"/api/v1/projects/{project.slug}/judgments/import/"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            url,
            {
                "file": SimpleUploadedFile("h.jsonl", history),
                "count_for_quality": "true",
            },
            format="multipart",
        )
    assert response.status_code == 202 and response.json()["count_for_quality"] is True
    done = api.get(response.json()["status_url"]).json()
    assert (done["state"], done["duplicates"]) == ("succeeded", 60)  # the same file again
    client.force_login(lead)
    page = f"/projects/{project.slug}/judgments/import/"
    assert 'name="count_for_quality"' in client.get(page).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        posted = client.post(
            page,
            {"file": SimpleUploadedFile("h2.jsonl", history), "count_for_quality": "on"},
        )
    assert posted.status_code == 302
    assert list(JudgmentImportJob.objects.values_list("count_for_quality", flat=True)) == [
        True,
        True,
    ]
