"""Importing judgments made elsewhere, and the sources' own rankings as judgments."""

import gzip
import io
import json
import re
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from conversations.models import KBReference, Role
from conversations.services.imports import transcript_import
from ratings.models import Item, Judgment, JudgmentImportJob, RaterProfile, TaskKind
from ratings.services.judgment_import import (
    JudgmentImportFailed,
    judgment_import,
    source_ranks_import,
)
from ratings.services.rubrics import rubric_set
from tests.factories import ConversationFactory, MessageFactory, UserFactory
from tests.ratings.conftest import RUBRIC

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
OASST = ROOT / "demo" / "data" / "oasst_en_100_tree.jsonl"


def jsonl(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def run(project, data: bytes, name="judgments.jsonl", **kwargs):
    return judgment_import(project=project, stream=io.BytesIO(data), source_name=name, **kwargs)


def failure(project, data: bytes, **kwargs) -> str:
    before = Judgment.objects.count()
    with pytest.raises(JudgmentImportFailed) as exc:
        run(project, data, **kwargs)
    assert Judgment.objects.count() == before
    return str(exc.value)


@pytest.fixture
def conv(project, lead):
    """Project with the test rubric and KB verification; conversation c1 has three candidates
    (c1-a, c1-b, c1-c: ids in that order) answering one question, c1-a citing KB-7."""
    project.has_kb_verification = True
    project.save()
    rubric_set(project=project, user=lead, criteria=RUBRIC)
    conversation = ConversationFactory(project=project, external_id="c1")
    MessageFactory(conversation=conversation, position=0, content="Reset my password?")
    for i, suffix in enumerate("abc"):
        MessageFactory(
            conversation=conversation,
            position=1,
            candidate=i,
            role="assistant",
            content=f"Answer {suffix}",
            external_id=f"c1-{suffix}",
        )
    KBReference.objects.create(
        message=conversation.messages.get(external_id="c1-a"), article_id="KB-7"
    )
    return conversation


def msg(conversation, external_id: str):
    return conversation.messages.get(external_id=external_id)


SCORE = {
    "id": "j1",
    "source": "labelstudio",
    "conversation_id": "c1",
    "response_id": "c1-a",
    "rater": "ls:alice",
    "created_at": "2024-05-03T09:12:00Z",
    "scores": {"helpfulness": 4, "accuracy": "yes", "tone": "warm"},
    "rationale": "Right steps.",
    "time_on_task_ms": 48000,
}


def pair(**preference) -> dict:
    return {
        "conversation_id": "c1",
        "response_a_id": "c1-b",  # the record's A is the item's B (higher id)
        "response_b_id": "c1-a",
        "rater": "ls:bob",
        "created_at": "2024-05-03T10:00:00+02:00",
        "preference": preference,
    }


def test_scores_create_the_item_the_external_rater_and_judgment(conv, project):
    summary = run(project, jsonl(SCORE))
    assert (summary.imported, summary.items_created, summary.raters_created) == (1, 1, 1)
    j = Judgment.objects.get()
    assert (j.is_external, j.assignment, j.source, j.external_id) == (
        True,
        None,
        "labelstudio",
        "j1",
    )
    assert (j.version, j.is_current, j.left_is_a, j.time_on_task_ms) == (1, True, None, 48000)
    assert j.created_at == datetime(2024, 5, 3, 9, 12, tzinfo=UTC)
    assert j.rubric == project.rubrics.get(is_current=True)
    assert {s.criterion.key: (s.value, s.choices) for s in j.scores.all()} == {
        "helpfulness": (4.0, []),
        "accuracy": (1.0, []),
        "tone": (2.0, ["warm"]),
    }
    item = j.item
    assert (item.kind, item.response, item.response_b) == (TaskKind.SCORE, msg(conv, "c1-a"), None)
    assert (item.n_active, item.n_done, item.overlap) == (0, 0, project.overlap)
    rater = j.rater
    assert rater.username == "ls:alice" and not rater.has_usable_password()
    assert (rater.rater_profile.is_external, rater.rater_profile.external_source) == (
        True,
        "labelstudio",
    )
    assert not project.memberships.filter(user=rater).exists()


def test_an_existing_external_rater_is_reused(conv, project):
    user = UserFactory(username="ls:alice")
    RaterProfile.objects.create(user=user, is_external=True, external_source="old")
    summary = run(project, jsonl(SCORE))
    assert summary.raters_created == 0 and Judgment.objects.get().rater == user


def test_an_internal_user_name_is_refused(conv, project, lead):
    record = {**SCORE, "rater": lead.username}
    assert f"line 1: rater: '{lead.username}' is an internal user" in failure(
        project, jsonl(record)
    )


@pytest.mark.parametrize(
    ("preference", "expected", "left_is_a"),
    [
        # the record's A (c1-b) was shown left and preferred much: item B much better
        ({"choice": "left_much_better", "left": "a"}, 2, False),
        ({"choice": "left_better", "left": "b"}, -1, True),  # c1-a shown left and preferred
        ({"choice": "tie", "left": "a", "both_bad": True}, 0, False),
        ({"winner": "a", "strength": 2}, 2, None),  # the record's A is the item's B
        ({"winner": "b"}, -1, None),
        ({"winner": "tie", "both_bad": True}, 0, None),
    ],
)
def test_pairwise_is_stored_in_true_terms_with_a_the_lower_id(
    conv, project, preference, expected, left_is_a
):
    run(project, jsonl(pair(**preference)))
    j = Judgment.objects.get()
    assert (j.preference, j.left_is_a, j.both_bad) == (
        expected,
        left_is_a,
        preference.get("both_bad", False),
    )
    assert (j.item.kind, j.item.response, j.item.response_b) == (
        TaskKind.PAIRWISE,
        msg(conv, "c1-a"),
        msg(conv, "c1-b"),
    )
    assert (j.item.n_active, j.item.n_done) == (0, 0)


def test_pairwise_criteria_and_candidate_indexes(conv, project):
    shown = {
        **pair(choice="right_better", left="a"),
        "scores": {"helpfulness": "right_much_better"},
    }
    winner = {
        "conversation_id": "c1",
        "candidate_a": 2,
        "candidate_b": 0,
        "rater": "sheet:carol",
        "created_at": "2024-05-04T16:00:00+02:00",
        "preference": {"winner": "a"},
        "scores": {"helpfulness": "b_much_better"},
    }
    run(project, jsonl(shown, winner))
    by_rater = {j.rater.username: j for j in Judgment.objects.all()}
    # c1-b shown left, c1-a right and better: A better; per criterion A much better
    shown_j = by_rater["ls:bob"]
    assert shown_j.preference == -1
    assert shown_j.scores.get().value == -2.0
    # candidate 2 (c1-c) beats candidate 0 (c1-a): item A = c1-a, so B better
    winner_j = by_rater["sheet:carol"]
    assert (winner_j.item.response, winner_j.item.response_b) == (
        msg(conv, "c1-a"),
        msg(conv, "c1-c"),
    )
    assert (winner_j.preference, winner_j.scores.get().value) == (1, -2.0)


def test_kb_verdict(conv, project):
    record = {
        "id": "kb-1",
        "conversation_id": "c1",
        "response_id": "c1-a",
        "rater": "sme:dora",
        "created_at": "2024-05-05T10:00:00Z",
        "verdict": "incorrect",
        "corrected_answer": " Use the reset link. ",
        "kb_issues": [{"article_id": "KB-7", "problem": "outdated"}],
    }
    run(project, jsonl(record))
    j = Judgment.objects.get()
    assert (j.item.kind, j.verdict, j.corrected_answer, j.kb_issues) == (
        TaskKind.KB_VERIFY,
        "incorrect",
        "Use the reset link.",
        [{"article_id": "KB-7", "problem": "outdated"}],
    )


def test_reimport_adds_nothing(conv, project):
    no_id = {k: v for k, v in SCORE.items() if k != "id"} | {"response_id": "c1-b"}
    data = jsonl(SCORE, no_id, pair(winner="a"))
    first = run(project, data)
    assert (first.imported, first.duplicates) == (3, 0)
    assert Judgment.objects.get(item__response__external_id="c1-b").external_id.startswith(
        "sha256:"
    )
    again = run(project, data)
    assert (again.imported, again.duplicates, again.items_created, again.raters_created) == (
        0,
        3,
        0,
        0,
    )
    assert Judgment.objects.count() == 3 and Item.objects.count() == 3


def test_duplicates_and_conflicts_within_one_gzip_file(conv, project):
    changed = {**SCORE, "rationale": "Changed my mind."}
    assert "line 3: id: judgment 'j1'" in failure(
        project, gzip.compress(jsonl(SCORE, SCORE, changed))
    )
    summary = run(project, gzip.compress(jsonl(SCORE, SCORE)))
    assert (summary.imported, summary.duplicates) == (1, 1)


def test_same_id_with_other_content_is_a_conflict_and_not_overwritten(conv, project):
    run(project, jsonl(SCORE))
    changed = {**SCORE, "scores": {"helpfulness": 1, "accuracy": "no"}}
    message = failure(project, jsonl(changed))
    assert "judgments.jsonl, line 1: id: judgment 'j1' from 'labelstudio' already exists" in (
        message
    )
    j = Judgment.objects.get()
    assert j.scores.get(criterion__key="helpfulness").value == 4.0
    # another source may use the same id: that is another judgment (here a later version)
    other = {**changed, "source": "sheet", "created_at": "2024-06-01T00:00:00Z"}
    assert run(project, jsonl(other)).imported == 1


@pytest.mark.parametrize("batch_size", [1, 100])
def test_a_later_judgment_by_the_same_rater_is_a_new_version(conv, project, batch_size):
    later = {**SCORE, "id": "j2", "created_at": "2024-05-04T09:00:00Z"}
    latest = {**SCORE, "id": "j3", "created_at": "2024-05-05T09:00:00Z"}
    summary = run(project, jsonl(SCORE, later), batch_size=batch_size)
    assert (summary.imported, summary.superseded) == (2, 1)
    run(project, jsonl(latest), batch_size=batch_size)
    rows = list(Judgment.objects.order_by("version").values_list("external_id", "is_current"))
    assert rows == [("j1", False), ("j2", False), ("j3", True)]
    assert Judgment.objects.order_by("version").last().version == 3


def test_an_earlier_judgment_by_the_same_rater_is_a_conflict(conv, project):
    earlier = {**SCORE, "id": "j0", "created_at": "2024-05-01T00:00:00Z"}
    message = failure(project, jsonl(SCORE, earlier))
    assert "line 2: created_at: 'ls:alice' already has a judgment on this item made at" in message
    run(project, jsonl(SCORE))
    failure(project, jsonl(earlier))
    assert Judgment.objects.get().external_id == "j1"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"conversation_id": "nope"}, "line 2: conversation_id: unknown conversation 'nope'"),
        ({"response_id": "zz"}, "line 2: response_id: no message 'zz' in conversation 'c1'"),
        ({"response_id": None, "candidate": 7}, "line 2: candidate: no candidate 7 at the last"),
        ({"conversation_id": ["c1"]}, "line 2: conversation_id: expected a string or integer id"),
        ({"rater": 5}, "line 2: rater: expected a string, got int"),
        ({"created_at": 1714000000}, "line 2: created_at: expected an ISO 8601 date-time"),
        ({"created_at": "2024-05-01T12:00:00"}, "line 2: created_at: needs a time zone"),
        ({"created_at": None}, "line 2: created_at: is missing"),
        ({"time_on_task_ms": "fast"}, "line 2: time_on_task_ms: expected a non-negative whole"),
        ({"scores": {"helpfulness": 9}}, "line 2: scores.helpfulness: expected a whole number"),
        ({"scores": {"helpfulness": 3}}, "line 2: scores.accuracy: Accuracy is required"),
        ({"scores": {"speed": 3}}, "line 2: scores: unknown criteria: speed"),
        ({"scores": None}, "line 2: scores: expected rubric scores, a preference or a verdict"),
        ({"score": {"helpfulness": 4}}, "line 2: score: unknown field"),
        ({"rationale": 5}, "line 2: rationale: expected text"),
        ({"missing_fact": "x"}, "line 2: missing_fact: belongs to a KB verdict only"),
    ],
)
def test_bad_record_names_the_line_and_field_and_imports_nothing(conv, project, change, expected):
    bad = {k: v for k, v in {**SCORE, "id": "j2", **change}.items() if v is not None}
    message = failure(project, jsonl(SCORE, bad))
    assert expected in message and "nothing imported" in message


@pytest.mark.parametrize(
    ("preference", "expected"),
    [
        ({"choice": "left_better"}, "preference.left: expected 'a' or 'b'"),
        ({"choice": "better", "left": "a"}, "preference.choice: expected one of left_much_better"),
        ({"winner": "c"}, "preference.winner: expected 'a', 'b' or 'tie'"),
        ({"winner": "a", "strength": 3}, "preference.strength: expected 1 or 2"),
        ({"winner": "tie", "strength": 1}, "preference.strength: a tie has no strength"),
        ({"winner": "a", "both_bad": "no"}, "preference.both_bad: expected true or false"),
        ({"winner": "a", "choice": "tie"}, "preference: give choice (with left) or winner"),
        ({"winner": "a", "left": "a"}, "preference.left: unknown field"),
    ],
)
def test_bad_preference_names_the_field(conv, project, preference, expected):
    assert f"line 1: {expected}" in failure(project, jsonl(pair(**preference)))


def test_pairs_must_share_a_position_and_the_project_must_run_the_kind(conv, project):
    MessageFactory(conversation=conv, position=2, role="user", content="And?")
    MessageFactory(
        conversation=conv, position=3, role="assistant", content="More", external_id="c1-d"
    )
    record = {**pair(winner="a"), "response_b_id": "c1-d"}
    assert "line 1: response_b_id: is at position 3, A at 1" in failure(project, jsonl(record))
    project.has_pairwise = False
    project.save()
    assert "line 1: preference: this project does not run pairwise items" in failure(
        project, jsonl(pair(winner="a"))
    )


def test_one_bad_line_imports_nothing_but_skip_invalid_keeps_the_good_ones(conv, project):
    unknown = {**SCORE, "id": "j9", "conversation_id": "nope"}
    data = (
        jsonl(SCORE, unknown, pair(winner="a"))
        + b'{"conversation_id": \n'
        + jsonl(pair(winner="x"))
    )
    message = failure(project, data)
    assert "3 invalid record(s)" in message and "line 4: malformed JSON" in message
    assert (
        not Item.objects.exists()
        and not get_user_model().objects.filter(username__startswith="ls:").exists()
    )
    rejects = io.BytesIO()
    summary = run(project, data, skip_invalid=True, rejects=rejects)
    assert (summary.imported, summary.rejected) == (2, 3)
    lines = [json.loads(x) for x in rejects.getvalue().splitlines()]
    # in line order, though the unknown conversation is found after the file's bad syntax
    assert [(x["line"], x["field"]) for x in lines] == [
        (2, "conversation_id"),
        (4, ""),
        (5, "preference.winner"),
    ]
    assert [e.line for e in summary.errors] == [2, 4, 5]
    assert json.loads(lines[2]["record"])["preference"] == {"winner": "x"}


def test_empty_file_and_non_leads_are_refused(conv, project, member):
    assert "the file holds no record" in failure(project, b"\n")
    with pytest.raises(PermissionDenied):
        run(project, jsonl(SCORE), user=member(Role.EVALUATOR))


def test_source_ranks_of_the_demo_trees_give_754_judgments(project):
    transcript_import(project=project, stream=OASST.open("rb"), source_name=OASST.name)
    summary = source_ranks_import(project=project, batch_size=100)
    assert (summary.imported, summary.rejected, summary.raters_created) == (754, 0, 1)
    judgments = Judgment.objects.select_related("item__response", "item__response_b", "rater")
    assert judgments.count() == 754
    assert (
        judgments.values("item__conversation", "item__response__position").distinct().count() == 212
    )
    for j in judgments:
        a, b = j.item.response.source_rank, j.item.response_b.source_rank
        assert j.preference == (-1 if a < b else 1)  # every lower rank beats every higher one
        assert (j.is_external, j.source, j.rater.username) == (True, "oasst", "source:oasst")
        assert j.created_at == j.item.conversation.created_at  # the trees carry no date
    assert Item.objects.filter(n_active=0, n_done=0, kind="pairwise").count() == 754
    again = source_ranks_import(project=project)
    assert (again.imported, again.duplicates) == (0, 754)


def test_source_ranks_of_an_hh_pair_chosen_beats_rejected(project):
    hh = {
        "chosen": "\n\nHuman: Hi, can you help me?\n\nAssistant: Of course, what do you need?",
        "rejected": "\n\nHuman: Hi, can you help me?\n\nAssistant: No.",
    }
    transcript_import(project=project, stream=io.BytesIO(jsonl(hh)), source_name="hh.jsonl")
    source_ranks_import(project=project)
    j = Judgment.objects.select_related("item__response", "item__response_b").get()
    better = j.item.response if j.preference < 0 else j.item.response_b
    assert (better.content, better.source_rank, abs(j.preference)) == (
        "Of course, what do you need?",
        0,
        1,
    )
    assert j.rater.username == "source:hh-rlhf"
    assert j.rater.rater_profile.external_source == "hh-rlhf"


def test_command_imports_skips_invalid_and_makes_judgments_from_source_ranks(
    tmp_path, conv, project
):
    path = tmp_path / "j.jsonl"
    path.write_bytes(jsonl(SCORE, pair(winner="x")))
    with pytest.raises(CommandError, match=r"j.jsonl, line 2: preference.winner"):
        call_command("import_judgments", path, project=project.slug, no_progress=True)
    out, err = StringIO(), StringIO()
    rejects = tmp_path / "bad.jsonl"
    call_command(
        "import_judgments",
        path,
        project=project.slug,
        skip_invalid=True,
        rejects=rejects,
        no_progress=True,
        stdout=out,
        stderr=err,
    )
    assert "imported 1, duplicates 0, rejected 1" in out.getvalue()
    assert json.loads(rejects.read_text())["line"] == 2
    conv.messages.filter(candidate__lt=2, position=1).update(source_rank=0)
    conv.messages.filter(candidate=2).update(source_rank=1)
    out = StringIO()
    call_command("import_judgments", from_source_ranks=True, project=project.slug, stdout=out)
    assert "source ranks: read 3 records, imported 3" in out.getvalue()
    assert Judgment.objects.filter(rater__username="source:native", preference=0).count() == 1
    with pytest.raises(CommandError, match="unknown project 'nope'"):
        call_command("import_judgments", path, project="nope")


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def upload(data: bytes, **fields) -> dict:
    return {"file": SimpleUploadedFile("j.jsonl", data), **fields}


def post_job(client: APIClient, project, data: bytes, capture, **fields) -> dict:
    """Upload through the API (202) and read the finished job at its status URL."""
    url = f"/api/v1/projects/{project.slug}/judgments/import/"
    with capture(execute=True):
        response = client.post(url, upload(data, **fields), format="multipart")
    assert response.status_code == 202, response.json()
    assert response["Location"] == response.json()["status_url"]
    return client.get(response.json()["status_url"]).json()


def test_api_imports_for_leads_in_a_job(conv, project, lead, django_capture_on_commit_callbacks):
    client = api(lead)
    done = post_job(
        client, project, jsonl(SCORE, pair(winner="a")), django_capture_on_commit_callbacks
    )
    assert (done["state"], done["imported"], done["raters_created"]) == ("succeeded", 2, 2)
    assert done["progress"] == 1.0
    bad = post_job(client, project, jsonl(pair(winner="x")), django_capture_on_commit_callbacks)
    assert bad["state"] == "failed" and "nothing imported" in bad["failure"]
    assert bad["errors"][0]["field"] == "preference.winner"
    skipped = post_job(
        client,
        project,
        jsonl(SCORE, pair(winner="x")),
        django_capture_on_commit_callbacks,
        skip_invalid="true",
    )
    assert skipped["state"] == "succeeded"
    assert (skipped["duplicates"], skipped["rejected"]) == (1, 1)
    rejects = client.get(skipped["rejects_url"])
    assert b"preference.winner" in b"".join(rejects.streaming_content)
    assert Judgment.objects.count() == 2


def test_api_job_is_queued_after_commit_and_run_by_its_task(
    conv, project, lead, django_capture_on_commit_callbacks
):
    url = f"/api/v1/projects/{project.slug}/judgments/import/"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api(lead).post(url, upload(jsonl(SCORE)), format="multipart")
    assert response.status_code == 202 and response.json()["state"] == "queued"
    assert len(callbacks) == 1 and not Judgment.objects.exists()
    callbacks[0]()
    assert Judgment.objects.count() == 1


def test_api_refuses_an_upload_over_the_limit(conv, project, lead, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 10
    url = f"/api/v1/projects/{project.slug}/judgments/import/"
    response = api(lead).post(url, upload(jsonl(SCORE)), format="multipart")
    assert response.status_code == 413
    assert "uploads are limited to 10" in response.json()["file"][0]
    assert not JudgmentImportJob.objects.exists()


def test_job_status_is_for_the_project_leads_only(
    conv, project, lead, member, django_capture_on_commit_callbacks
):
    job = post_job(api(lead), project, jsonl(SCORE), django_capture_on_commit_callbacks)
    assert api(member(Role.EVALUATOR)).get(job["status_url"]).status_code == 404
    assert api(UserFactory()).get(job["status_url"]).status_code == 404


def test_rejects_file_is_for_the_project_leads_only(
    conv, project, lead, member, django_capture_on_commit_callbacks
):
    job = post_job(
        api(lead),
        project,
        jsonl(SCORE, pair(winner="x")),
        django_capture_on_commit_callbacks,
        skip_invalid="true",
    )
    assert api(lead).get(job["rejects_url"]).status_code == 200
    assert api(member(Role.EVALUATOR)).get(job["rejects_url"]).status_code == 404
    assert api(UserFactory()).get(job["rejects_url"]).status_code == 404


def test_the_page_uploads_a_job_and_shows_its_state(
    conv, project, lead, member, client, settings, django_capture_on_commit_callbacks
):
    client.force_login(lead)
    page = f"/projects/{project.slug}/judgments/import/"
    assert "Import judgments into" in client.get(page).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page, {"file": SimpleUploadedFile("j.jsonl", jsonl(SCORE))})
    assert response.status_code == 302
    shown = client.get(response["Location"]).content.decode()
    assert 'data-testid="job-state">succeeded<' in shown
    assert 'data-testid="imported">1<' in shown
    assert "j.jsonl" in client.get(page).content.decode()  # in the recent imports
    settings.IMPORT_MAX_UPLOAD_BYTES = 10
    refused = client.post(page, {"file": SimpleUploadedFile("j.jsonl", jsonl(SCORE))})
    assert refused.status_code == 200
    assert "uploads are limited to 10" in refused.content.decode()
    assert JudgmentImportJob.objects.count() == 1
    client.force_login(member(Role.EVALUATOR))
    assert client.get(page).status_code == 403
    assert client.get(response["Location"]).status_code == 404


def test_api_refuses_non_leads_and_hides_the_project_from_non_members(conv, project, member):
    url = f"/api/v1/projects/{project.slug}/judgments/import/"
    evaluator = api(member(Role.EVALUATOR)).post(url, upload(jsonl(SCORE)), format="multipart")
    assert evaluator.status_code == 403
    stranger = api(UserFactory()).post(url, upload(jsonl(SCORE)), format="multipart")
    assert stranger.status_code == 404
    assert not Judgment.objects.exists()


def test_the_documented_examples_import(project, lead):
    project.has_kb_verification = True
    project.save()
    rubric_set(project=project, user=lead, criteria=RUBRIC)
    docs = (ROOT / "docs" / "formats.md").read_text()
    native = re.findall(r"```json\n(.*?)```", docs, re.S)[0]
    transcript_import(project=project, stream=io.BytesIO(native.encode()), source_name="n.jsonl")
    section = docs.split("## Existing judgments (`import_judgments`)")[1]
    examples = re.findall(r"```json\n(.*?)```", section, re.S)
    assert len(examples) == 4
    summary = run(project, "".join(examples).encode())
    assert (summary.imported, summary.rejected) == (4, 0)
    shown = Judgment.objects.get(external_id="ls-1002")
    assert (shown.preference, shown.left_is_a) == (1, False)  # B was shown left and preferred
    winner = Judgment.objects.get(source="sheet")
    assert (winner.preference, winner.left_is_a) == (-2, None)
