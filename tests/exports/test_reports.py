"""The KB-correctness report and the model leaderboard: builders, pages, JSON and CSV."""

import csv
import io
import math
from datetime import UTC, date, datetime

import pytest
from rest_framework.test import APIClient
from statsmodels.stats.proportion import proportion_confint

from conversations.models import KBReference, Role
from exports.reports import (
    KBFilters,
    kb_consensus,
    kb_report,
    leaderboard_report,
    wilson_interval,
)
from ratings.models import Criterion, Item, Judgment, Rubric, Score
from tests.factories import (
    ConversationFactory,
    MessageFactory,
    UserFactory,
    pairwise_conversation,
)

pytestmark = pytest.mark.django_db

WEEK_1 = datetime(2024, 3, 5, 12, tzinfo=UTC)  # the week of Monday 2024-03-04
WEEK_2 = datetime(2024, 3, 12, 12, tzinfo=UTC)  # ... of 2024-03-11
WEEK_3 = datetime(2024, 3, 19, 12, tzinfo=UTC)  # ... of 2024-03-18


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


# ---------------------------------------------------------------------------
# Builders of test data
# ---------------------------------------------------------------------------


def kb_answer(project, *, articles, model="bot-1", topic="shipping", occurred_at=None, **conv):
    """A conversation whose answer cites ``articles``, queued as a KB-verification item."""
    conversation = ConversationFactory(
        project=project, metadata={"topic": topic}, occurred_at=occurred_at, **conv
    )
    MessageFactory(conversation=conversation, position=0, role="user", content="Where is it?")
    answer = MessageFactory(
        conversation=conversation, position=1, role="assistant", content="Here.", model=model
    )
    for k, article in enumerate(articles):
        KBReference.objects.create(
            message=answer, position=k, article_id=article, title=f"Title of {article}"
        )
    return Item.objects.create(
        project=project, kind="kb_verify", conversation=conversation, response=answer, overlap=3
    )


def verdict(item, rater, value, *, corrected="", missing="", issues=(), **extra):
    return Judgment.objects.create(
        item=item,
        rater=rater,
        verdict=value,
        corrected_answer=corrected,
        missing_fact=missing,
        kb_issues=list(issues),
        created_at=datetime(2024, 4, 1, tzinfo=UTC),
        **extra,
    )


@pytest.fixture
def smes(member):
    return [member(Role.SME, username=f"sme{k}") for k in range(3)]


@pytest.fixture
def kb(project, smes):
    """Seven answers with known verdicts (see each line) over articles KB-1, KB-2, KB-3."""
    s1, s2, s3 = smes
    a = [
        kb_answer(project, articles=["KB-3"], topic="billing", occurred_at=WEEK_1),
        kb_answer(project, articles=["KB-1"], occurred_at=WEEK_1, source_name="faq.jsonl"),
        kb_answer(project, articles=["KB-1", "KB-2"], occurred_at=WEEK_1),
        kb_answer(project, articles=["KB-1"], occurred_at=WEEK_2),
        kb_answer(project, articles=["KB-1"], occurred_at=WEEK_2),
        kb_answer(project, articles=["KB-2"], model="bot-2", occurred_at=WEEK_3),
        kb_answer(project, articles=["KB-2"], model="bot-2"),
    ]
    verdict(a[0], s1, "incorrect", corrected="Use form B.")  # incorrect
    verdict(a[1], s1, "correct")  # correct (2 of 3)
    verdict(a[1], s2, "correct")
    verdict(a[1], s3, "incorrect", corrected="Nope.")
    verdict(
        a[2],
        s1,
        "incorrect",
        corrected="Paris.",
        issues=[{"article_id": "KB-2", "problem": "outdated"}],
    )
    verdict(
        a[2],
        s2,
        "incorrect",
        corrected="Paris, France.",
        issues=[
            {"article_id": "KB-2", "problem": "outdated"},
            {"article_id": "KB-1", "problem": "wrong"},
        ],
    )  # incorrect (2 of 3)
    verdict(a[2], s3, "correct")
    verdict(
        a[3],
        s1,
        "incomplete",
        missing="The opening hours.",
        issues=[{"article_id": "", "problem": "missing"}],
    )  # incomplete: cannot_judge abstains
    verdict(a[3], s2, "cannot_judge")
    verdict(a[4], s1, "correct")  # disputed (1 to 1)
    verdict(a[4], s2, "incorrect", corrected="Elsewhere.")
    verdict(a[5], s1, "cannot_judge")  # cannot judge (every vote abstains)
    verdict(a[5], s2, "cannot_judge")
    # a[6] has no internal judgment; an imported one counts only on request
    verdict(a[6], UserFactory(), "incorrect", corrected="Imported fix.", is_external=True)
    # an old version never counts
    verdict(a[1], s1, "incorrect", corrected="Old.", is_current=False, version=0)
    return project, a


# ---------------------------------------------------------------------------
# Small statistics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # p = 1/4, z = 1.959964: centre (0.25 + z²/8) / (1 + z²/4) = 0.372474,
        # half z / (1 + z²/4) * sqrt(0.25 * 0.75 / 4 + z² / 64) = 0.326887
        (1, 4, 0.0455873, 0.6993582),
        (1, 1, 0.2065493, 1.0),
        (0, 10, 0.0, 0.2775328),
        (5, 10, 0.2365931, 0.7634069),
    ],
)
def test_wilson_interval_matches_hand_computed_values(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-6)
    assert wilson_interval(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"))


def test_wilson_interval_is_undefined_without_answers():
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        (["correct", "correct", "incorrect"], "correct"),
        (["correct", "incorrect"], "disputed"),
        (["incomplete", "cannot_judge"], "incomplete"),
        (["cannot_judge", "cannot_judge"], "cannot_judge"),
        (["correct", "incorrect", "cannot_judge", "cannot_judge"], "disputed"),
        ([], None),
    ],
)
def test_kb_consensus(votes, expected):
    assert kb_consensus(votes) == expected


# ---------------------------------------------------------------------------
# KB report
# ---------------------------------------------------------------------------


def test_kb_shares_and_wilson_intervals_per_article_sorted_by_citations(kb):
    project, _ = kb
    report = kb_report(project=project, filters=KBFilters(), reveal_raters=False)
    articles = {a["article_id"]: a for a in report.articles}
    assert [a["article_id"] for a in report.articles] == ["KB-1", "KB-2", "KB-3"]
    assert [a["citations"] for a in report.articles] == [4, 3, 1]

    kb1 = articles["KB-1"]  # correct, incorrect, incomplete, disputed
    assert (kb1["judged"], kb1["correct"], kb1["incorrect"], kb1["incomplete"]) == (4, 1, 1, 1)
    assert kb1["disputed"] == 1 and kb1["share_disputed"] == 0.25
    assert kb1["share_correct"] == 0.25
    assert (kb1["share_correct_low"], kb1["share_correct_high"]) == pytest.approx(
        (0.0455873, 0.6993582), abs=1e-6
    )
    assert kb1["flagged_wrong"] == 1 and kb1["title"] == "Title of KB-1"

    kb2 = articles["KB-2"]  # incorrect, cannot judge, not judged: cannot-judge is left out
    assert (kb2["judged"], kb2["incorrect"], kb2["cannot_judge"]) == (1, 1, 1)
    assert kb2["share_incorrect"] == 1.0
    assert kb2["share_incorrect_low"] == pytest.approx(0.2065493, abs=1e-6)
    assert kb2["flagged_outdated"] == 2

    t = report.totals
    assert (t["answers"], t["judged"], t["cannot_judge"]) == (7, 5, 1)
    assert t["share_incorrect"] == pytest.approx(2 / 5)
    assert (t["share_incorrect_low"], t["share_incorrect_high"]) == pytest.approx(
        (0.1176208, 0.7692757), abs=1e-6
    )
    assert (t["flagged_outdated"], t["flagged_wrong"], t["flagged_missing"]) == (2, 1, 1)
    assert report.unnamed_missing == 1


def test_kb_per_source_and_weekly_trend(kb):
    project, _ = kb
    report = kb_report(project=project, filters=KBFilters(), reveal_raters=False)
    sources = {(s["source_format"], s["source_name"]): s for s in report.sources}
    assert sources[("native", "faq.jsonl")]["correct"] == 1
    assert sources[("native", "")]["answers"] == 6
    weekly = {w["week"]: w for w in report.weekly}
    assert list(weekly) == [date(2024, 3, 4), date(2024, 3, 11), date(2024, 3, 18)]
    assert (weekly[date(2024, 3, 4)]["judged"], weekly[date(2024, 3, 4)]["incorrect"]) == (3, 2)
    assert weekly[date(2024, 3, 4)]["share_correct"] == pytest.approx(1 / 3)
    assert weekly[date(2024, 3, 11)]["judged"] == 2
    assert weekly[date(2024, 3, 18)]["judged"] == 0
    assert weekly[date(2024, 3, 18)]["share_correct"] is None


def test_kb_answer_list_has_corrections_and_missing_facts_most_cited_first(kb):
    project, a = kb
    answers = kb_report(project=project, filters=KBFilters(), reveal_raters=True).answers
    # a[0] was created first but cites KB-3 (1 citation); a[2] and a[3] cite KB-1 (4)
    assert [r["item_id"] for r in answers] == [a[2].pk, a[3].pk, a[0].pk]
    wrong = answers[0]
    assert wrong["verdict"] == "incorrect" and wrong["citations"] == 4
    assert wrong["articles"] == ["KB-1", "KB-2"] and wrong["question"] == "Where is it?"
    assert {c["corrected_answer"] for c in wrong["corrections"]} == {"Paris.", "Paris, France."}
    assert {c["rater"] for c in wrong["corrections"]} == {"sme0", "sme1"}
    assert wrong["votes"] == {"incorrect": 2, "correct": 1}
    assert {(i["article_id"], i["problem"]) for i in wrong["kb_issues"]} == {
        ("KB-2", "outdated"),
        ("KB-1", "wrong"),
    }
    assert answers[1]["verdict"] == "incomplete"
    assert answers[1]["corrections"][0]["missing_fact"] == "The opening hours."


def test_kb_filters_by_date_model_topic_and_external(kb):
    project, a = kb

    def report(**kw):
        return kb_report(project=project, filters=KBFilters(**kw), reveal_raters=False)

    later = report(date_from=date(2024, 3, 11))  # a[3], a[4], a[5]; a[6] has no date
    assert later.totals["answers"] == 3
    assert {r["article_id"] for r in later.articles} == {"KB-1", "KB-2"}
    assert report(date_to=date(2024, 3, 10)).totals["answers"] == 3  # a[0..2]
    assert report(date_from=date(2024, 3, 12), date_to=date(2024, 3, 12)).totals["answers"] == 2

    bot2 = report(model="bot-2")
    assert (bot2.totals["answers"], bot2.totals["judged"], bot2.totals["cannot_judge"]) == (2, 0, 1)
    assert [r["article_id"] for r in bot2.articles] == ["KB-2"]

    billing = report(topic="billing")
    assert billing.totals["answers"] == 1 and billing.articles[0]["article_id"] == "KB-3"
    assert [r["item_id"] for r in billing.answers] == [a[0].pk]

    with_imported = report(model="bot-2", include_external=True)
    assert with_imported.totals["incorrect"] == 1
    assert with_imported.answers[0]["corrections"][0]["corrected_answer"] == "Imported fix."


def test_kb_csv_columns(kb, member):
    project, _ = kb
    client = api(member(Role.CONSUMER))
    url = f"/api/v1/projects/{project.slug}/reports/kb/"
    rows = csv_rows(client.get(url, {"format": "csv"}))
    assert [r["article_id"] for r in rows] == ["KB-1", "KB-2", "KB-3"]
    assert {
        "article_id",
        "title",
        "citations",
        "judged",
        "correct",
        "incorrect",
        "incomplete",
        "disputed",
        "cannot_judge",
        "share_correct",
        "share_correct_low",
        "share_correct_high",
        "share_incorrect_low",
        "share_incomplete_high",
        "flagged_wrong",
        "flagged_outdated",
        "flagged_missing",
    } <= set(rows[0])
    assert float(rows[0]["share_correct_low"]) == pytest.approx(0.0455873, abs=1e-6)
    assert (rows[2]["judged"], rows[2]["incorrect"], float(rows[2]["share_correct"])) == (
        "1",
        "1",
        0,
    )

    answers = csv_rows(client.get(f"{url}answers/", {"format": "csv", "model": "bot-1"}))
    assert len(answers) == 3
    assert {
        "item_id",
        "conversation",
        "model",
        "topic",
        "articles",
        "citations",
        "verdict",
        "question",
        "answer",
        "corrected_answers",
        "missing_facts",
        "kb_issues",
    } <= set(answers[0])
    assert answers[0]["articles"] == "KB-1; KB-2"
    assert "Paris, France." in answers[0]["corrected_answers"]
    assert answers[1]["missing_facts"].endswith("The opening hours.")
    for path in ("sources/", "weekly/"):
        assert csv_rows(client.get(f"{url}{path}", {"format": "csv"}))
    body = client.get(url, {"topic": "billing"}).json()
    assert body["totals"]["answers"] == 1 and body["filters"]["topic"] == "billing"
    assert client.get(url, {"date_from": "2024-03-12", "date_to": "2024-03-01"}).status_code == 400


def test_kb_rater_identities_are_pseudonymised_unless_the_project_allows(kb, member, lead):
    project, _ = kb
    consumer = member(Role.CONSUMER)
    url = f"/api/v1/projects/{project.slug}/reports/kb/answers/"

    def raters(user):
        return {c["rater"] for a in api(user).get(url).json() for c in a["corrections"]}

    hidden = raters(consumer)
    assert hidden and all(r.startswith("rater-") for r in hidden)
    assert "sme0" not in api(consumer).get(url, {"format": "csv"}).content.decode()
    assert "sme0" in raters(lead)  # leads see every judgment anyway
    project.show_rater_identities = True
    project.save()
    assert raters(consumer) == {"sme0", "sme1"}


def test_kb_page_renders_charts_and_tables(client, kb, member):
    project, _ = kb
    client.force_login(member(Role.CONSUMER))
    response = client.get(f"/projects/{project.slug}/reports/kb/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html and "interval-chart" in html and "line-chart" in html
    assert "KB-1" in html and "Paris, France." in html and "The opening hours." in html
    assert "sme0" not in html
    filtered = client.get(f"/projects/{project.slug}/reports/kb/", {"topic": "billing"})
    assert "Use form B." in filtered.content.decode() and "Paris." not in filtered.content.decode()
    bad = client.get(f"/projects/{project.slug}/reports/kb/", {"date_from": "yesterday"})
    assert bad.status_code == 400


# ---------------------------------------------------------------------------
# Leaderboard
# ---------------------------------------------------------------------------


def pair_item(project, models=("model-0", "model-1")):
    conversation = pairwise_conversation(project)
    a, b = conversation.messages.filter(role="assistant").order_by("id")
    a.model, b.model = models
    a.save()
    b.save()
    return Item.objects.create(
        project=project,
        kind="pairwise",
        conversation=conversation,
        response=a,
        response_b=b,
        overlap=5,
    )


def prefer(item, rater, preference, *, left_is_a=None, both_bad=False, **extra):
    return Judgment(
        item=item,
        rater=rater,
        preference=preference,
        both_bad=both_bad,
        left_is_a=left_is_a,
        created_at=datetime(2024, 4, 1, tzinfo=UTC),
        **extra,
    )


@pytest.fixture
def raters(member):
    return [member(Role.EVALUATOR) for _ in range(5)]


@pytest.fixture
def two_wins_two_ties(project, raters):
    """model-0 (response A) beats model-1 twice and ties twice (once as both bad)."""
    item = pair_item(project)
    Judgment.objects.bulk_create(
        [
            prefer(item, raters[0], -1),
            prefer(item, raters[1], -2),
            prefer(item, raters[2], 0),
            prefer(item, raters[3], -1, both_bad=True),
            prefer(item, raters[4], 2, is_external=True),  # external: left out by default
        ]
    )
    same = pair_item(project, models=("model-0", "model-0"))
    blank = pair_item(project, models=("model-0", ""))
    Judgment.objects.bulk_create([prefer(same, raters[0], 1), prefer(blank, raters[0], 1)])
    return project


def test_leaderboard_known_case_gap_and_matrix(two_wins_two_ties):
    board = leaderboard_report(project=two_wins_two_ties, n_boot=50)
    assert board.status == "ok"
    rows = {r["model"]: r for r in board.rows}
    gap = rows["model-0"]["rating"] - rows["model-1"]["rating"]
    assert gap == pytest.approx(400 * math.log10(3), abs=0.05)  # 190.85: 3:1 odds
    assert rows["model-0"]["rating"] == pytest.approx(1095.42, abs=0.05)
    assert (rows["model-0"]["wins"], rows["model-0"]["ties"], rows["model-0"]["losses"]) == (
        2,
        2,
        0,
    )
    assert (rows["model-1"]["wins"], rows["model-1"]["losses"], rows["model-1"]["battles"]) == (
        0,
        2,
        4,
    )
    assert rows["model-0"]["lower"] <= rows["model-0"]["rating"] <= rows["model-0"]["upper"]
    assert rows["model-0"]["rank"] == 1
    assert board.matrix["models"] == ["model-0", "model-1"]
    assert board.matrix["wins"] == [[0, 2], [0, 0]]
    assert board.matrix["ties"] == [[0, 2], [2, 0]]
    assert board.matrix["losses"] == [[0, 0], [2, 0]]
    assert (board.n_battles, board.skipped_same_model, board.skipped_no_model) == (4, 1, 1)
    assert board.position_bias["fitted"] is False  # no side known


def test_leaderboard_includes_external_judgments_on_request(two_wins_two_ties):
    board = leaderboard_report(project=two_wins_two_ties, n_boot=20, include_external=True)
    rows = {r["model"]: r for r in board.rows}
    assert rows["model-1"]["wins"] == 1 and board.n_battles == 5
    # W = 3, L = 2 for model-0: 400·log10(3/2)
    gap = rows["model-0"]["rating"] - rows["model-1"]["rating"]
    assert gap == pytest.approx(400 * math.log10(1.5), abs=0.05)


def test_leaderboard_insufficient_data_names_the_groups(project, raters, client, member):
    ab, cd = pair_item(project, ("a", "b")), pair_item(project, ("c", "d"))
    Judgment.objects.bulk_create([prefer(ab, raters[0], -1), prefer(cd, raters[0], 1)])
    board = leaderboard_report(project=project, n_boot=20)
    assert board.status == "insufficient data"
    assert sorted(map(sorted, board.components)) == [["a", "b"], ["c", "d"]]
    assert all(r["rating"] is None and r["rank"] is None for r in board.rows)
    assert board.matrix["wins"][0][1] == 1  # the matrix is still shown

    user = member(Role.CONSUMER)
    rows = csv_rows(
        api(user).get(f"/api/v1/projects/{project.slug}/reports/leaderboard/?format=csv")
    )
    assert {r["model"] for r in rows} == {"a", "b", "c", "d"} and rows[0]["rating"] == ""
    client.force_login(user)
    html = client.get(f"/projects/{project.slug}/reports/leaderboard/?n_boot=20").content.decode()
    assert "Insufficient data" in html and "a, b" in html and "c, d" in html


def test_leaderboard_position_bias_is_positive_when_the_left_side_wins(project, raters):
    judgments = []
    for k in range(8):
        item = pair_item(project)
        for r, rater in enumerate(raters):
            left_is_a = (k + r) % 2 == 0
            left_wins = r < 4  # four of five raters pick the left response
            a_wins = left_wins == left_is_a
            judgments.append(prefer(item, rater, -1 if a_wins else 1, left_is_a=left_is_a))
    Judgment.objects.bulk_create(judgments)
    board = leaderboard_report(project=project, n_boot=50)
    bias = board.position_bias
    assert bias["fitted"] and bias["elo"] > 100
    assert bias["left_win_prob"] == pytest.approx(0.8, abs=0.01)
    assert bias["low"] > 0
    rows = {r["model"]: r for r in board.rows}
    assert abs(rows["model-0"]["rating"] - rows["model-1"]["rating"]) < 30


def test_leaderboard_per_criterion_means(project, raters, member):
    rubric = Rubric.objects.create(project=project)
    helpful = Criterion.objects.create(
        rubric=rubric, key="helpfulness", label="Helpfulness", scale="likert", points=5
    )
    accurate = Criterion.objects.create(
        rubric=rubric, key="accuracy", label="Accuracy", scale="binary", position=1
    )
    tone = Criterion.objects.create(
        rubric=rubric, key="tone", label="Tone", scale="single_choice", options=["a", "b"]
    )
    conversation = pairwise_conversation(project)
    m0, m1 = conversation.messages.filter(role="assistant").order_by("candidate")

    def scored(message, rater, values, **extra):
        item, _ = Item.objects.get_or_create(
            project=project,
            kind="score",
            response=message,
            defaults={"conversation": conversation, "overlap": 3},
        )
        judgment = Judgment.objects.create(
            item=item, rater=rater, created_at=datetime(2024, 4, 1, tzinfo=UTC), **extra
        )
        for criterion, value in values.items():
            Score.objects.create(judgment=judgment, criterion=criterion, value=value)

    scored(m0, raters[0], {helpful: 4, accurate: 1, tone: 1})
    scored(m0, raters[1], {helpful: 5, accurate: 0})
    scored(m0, raters[2], {helpful: 1}, is_current=False)  # an old version
    scored(m1, raters[0], {helpful: 2, accurate: 1})

    board = leaderboard_report(project=project, n_boot=10)
    means = {(r["criterion"], r["model"]): (r["mean"], r["n"]) for r in board.criteria}
    assert means == {
        ("helpfulness", "model-0"): (4.5, 2),
        ("helpfulness", "model-1"): (2.0, 1),
        ("accuracy", "model-0"): (0.5, 2),
        ("accuracy", "model-1"): (1.0, 1),
    }
    rows = csv_rows(
        api(member(Role.CONSUMER)).get(
            f"/api/v1/projects/{project.slug}/reports/leaderboard/?format=csv&n_boot=10"
        )
    )
    model0 = next(r for r in rows if r["model"] == "model-0")
    assert float(model0["mean_helpfulness"]) == 4.5 and model0["n_helpfulness"] == "2"
    assert float(model0["mean_accuracy"]) == 0.5


def test_leaderboard_api_json_csv_and_page(two_wins_two_ties, member, client):
    project = two_wins_two_ties
    user = member(Role.CONSUMER)
    url = f"/api/v1/projects/{project.slug}/reports/leaderboard/"
    body = api(user).get(url, {"n_boot": 30, "seed": 3}).json()
    assert body["status"] == "ok" and body["n_boot"] == 30 and body["seed"] == 3
    assert [m["model"] for m in body["models"]] == ["model-0", "model-1"]
    assert set(body["position_bias"]) == {"fitted", "elo", "low", "high", "left_win_prob"}
    rows = csv_rows(api(user).get(url, {"n_boot": 30, "format": "csv"}))
    assert list(rows[0])[:9] == [
        "model",
        "rating",
        "lower",
        "upper",
        "rank",
        "wins",
        "ties",
        "losses",
        "battles",
    ]
    assert float(rows[0]["rating"]) == pytest.approx(1095.42, abs=0.05)
    assert api(user).get(url, {"n_boot": 0}).status_code == 400

    client.force_login(user)
    response = client.get(f"/projects/{project.slug}/reports/leaderboard/", {"n_boot": 30})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html and "interval-chart" in html and "whisker" in html and "heatmap" in html
    assert "2–2–0" in html  # model-0 against model-1: wins–ties–losses
    default = leaderboard_report(project=project)
    assert default.n_boot == 1000 and default.n_boot_used == 1000


def test_leaderboard_is_deterministic_for_a_seed_and_follows_new_judgments(two_wins_two_ties):
    first = leaderboard_report(project=two_wins_two_ties, n_boot=40, seed=7)
    again = leaderboard_report(project=two_wins_two_ties, n_boot=40, seed=7)
    assert first.rows == again.rows
    item = Item.objects.get(response__model="model-0", response_b__model="model-1")
    Judgment.objects.create(
        item=item, rater=UserFactory(), preference=2, created_at=datetime(2024, 4, 2, tzinfo=UTC)
    )
    changed = leaderboard_report(project=two_wins_two_ties, n_boot=40, seed=7)
    assert changed.rows[0]["rating"] < first.rows[0]["rating"]  # a new judgment is never stale


# ---------------------------------------------------------------------------
# Access
# ---------------------------------------------------------------------------

PAGES = ["/projects/{}/reports/kb/", "/projects/{}/reports/leaderboard/?n_boot=10"]
APIS = [
    "/api/v1/projects/{}/reports/kb/",
    "/api/v1/projects/{}/reports/kb/answers/?format=csv",
    "/api/v1/projects/{}/reports/leaderboard/?n_boot=10",
]


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.LEAD, 200), (Role.CONSUMER, 200), (Role.EVALUATOR, 403), (Role.SME, 403), (None, 404)],
)
def test_reports_are_for_leads_and_consumers(client, project, member, role, status):
    user = member(role) if role else UserFactory()
    client.force_login(user)
    for page in PAGES:
        assert client.get(page.format(project.slug)).status_code == status, page
    for url in APIS:
        assert api(user).get(url.format(project.slug)).status_code == status, url


def test_reports_need_a_login(client, project):
    response = client.get(f"/projects/{project.slug}/reports/kb/")
    assert response.status_code == 302 and "login" in response["Location"]
    assert APIClient().get(f"/api/v1/projects/{project.slug}/reports/kb/").status_code in (401, 403)
