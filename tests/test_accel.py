"""One switch for the accelerations (config/accel/), and the same results with them off and
on: import, next/submit, quality data and export run with ``RATELOOP_ACCEL=off`` (the plain
Django path, what SQLite runs) and ``auto`` (on PostgreSQL: every acceleration) and agree."""

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from config import accel
from conversations.accel.copy_writer import CopyWriter
from conversations.importers.writers import OrmWriter
from conversations.models import Conversation, KBReference, Message, Project, Role
from conversations.services.imports import transcript_import, writer_class
from exports.accel import fast
from exports.canonical import ExportFilters
from exports.pipeline import ExportOptions, run_export
from ratings import quality_data
from ratings.models import Judgment, TaskKind
from ratings.selectors import task_view
from ratings.services import assignments
from ratings.services.assignments import assignment_next
from ratings.services.items import items_queue
from ratings.services.judgments import judgment_submit
from ratings.services.rubrics import rubric_set
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, pairwise_conversation

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.django_db

# --- the switch ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("auto", None),
        ("", None),
        (" Off ", frozenset()),
        ("next_sql", {"next_sql"}),
        (" next_sql, export_cache ,", {"next_sql", "export_cache"}),
    ],
)
def test_the_setting_selects_names(value, names):
    assert accel.parse(value) == names


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(ImproperlyConfigured, match="unknown accelerations: nxt_sql .*next_sql"):
        accel.parse("next_sql,nxt_sql")


def test_an_unknown_name_stops_the_start():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="1")
    env["RATELOOP_ACCEL"] = "copy"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "RATELOOP_ACCEL names unknown accelerations: copy" in result.stderr


def test_asking_for_an_acceleration_that_does_not_exist_is_a_bug():
    with pytest.raises(ValueError, match="no acceleration named 'copy'"):
        accel.enabled("copy")


def test_enabled_reads_the_setting_at_call_time(settings):
    on_postgres = connection.vendor == "postgresql"
    settings.RATELOOP_ACCEL = "auto"
    assert accel.enabled_names() == (list(accel.ACCELERATIONS) if on_postgres else [])
    settings.RATELOOP_ACCEL = "off"
    assert accel.enabled_names() == []
    settings.RATELOOP_ACCEL = "next_sql,quality_copy"
    assert accel.enabled_names() == (["next_sql", "quality_copy"] if on_postgres else [])


def test_the_services_follow_the_switch(settings):
    settings.RATELOOP_ACCEL = "off"
    assert writer_class() is OrmWriter
    assert fast.refusal(ExportOptions(format="trl")) == (
        "switched off (RATELOOP_ACCEL) or not PostgreSQL"
    )
    settings.RATELOOP_ACCEL = "auto"
    on_postgres = connection.vendor == "postgresql"
    assert writer_class() is (CopyWriter if on_postgres else OrmWriter)
    assert (fast.refusal(ExportOptions(format="trl")) is None) == on_postgres


def test_no_code_outside_config_accel_asks_which_database_it_runs_on():
    found = []
    tops = [p for p in ROOT.iterdir() if p.is_dir() and p.name not in (".venv", "tests", "var")]
    paths = [*ROOT.glob("*.py"), *(path for top in tops for path in top.rglob("*.py"))]
    for path in paths:
        rel = path.relative_to(ROOT)
        if Path("config/accel") in rel.parents:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if ".vendor" in line:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []


# --- both modes give the same results (meaningful on PostgreSQL, where auto differs) ---------

both_modes = pytest.mark.postgres  # on SQLite auto is off: nothing to compare


def in_mode(settings, mode: str) -> None:
    settings.RATELOOP_ACCEL = mode


TRICKY = 'tab\there, back\\slash, CR\r\nLF\n, quote " café 東京 🙂 \\N \\.'
RECORDS = [
    {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
    {
        "id": "t-1",
        "occurred_at": "2024-05-01T12:00:00+02:00",
        "metadata": {"topic": "billing", "note": TRICKY, "n": [1, 2.5, None, True]},
        "messages": [
            {"role": "system", "content": TRICKY, "name": "sys\tname"},
            {"role": "user", "content": "  padded  "},
            {"role": "assistant", "content": TRICKY * 3, "model": "bot-1", "metadata": {"a": 1}},
        ],
    },
    {
        "id": "kb",
        "messages": [{"role": "user", "content": "How?"}],
        "candidates": [
            {"content": "Like this.", "kb_references": [{"article_id": "KB-1", "snippet": TRICKY}]},
            {"content": "Or so.", "kb_references": [{"article_id": "KB-2"}]},
        ],
    },
]


def stored(project: Project) -> dict:
    """Every stored row of the project's conversations, without ids and times of writing."""
    convs = Conversation.objects.filter(project=project).order_by("source_line")
    return {
        "conversations": list(
            convs.values(
                "external_id",
                "content_hash",
                "metadata",
                "occurred_at",
                "source_format",
                "source_name",
                "source_line",
            )
        ),
        "messages": list(
            Message.objects.filter(conversation__project=project)
            .order_by("conversation__source_line", "position", "candidate")
            .values(
                "conversation__external_id",
                "position",
                "candidate",
                "role",
                "content",
                "name",
                "model",
                "metadata",
            )
        ),
        "kb": list(
            KBReference.objects.filter(message__conversation__project=project)
            .order_by("message__conversation__source_line", "message__candidate", "position")
            .values("message__candidate", "article_id", "snippet", "position")
        ),
    }


@both_modes
def test_import_stores_the_same_rows_in_both_modes(settings):
    data = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    results = {}
    for mode in ("off", "auto"):
        in_mode(settings, mode)
        project = ProjectFactory(slug=f"import-{mode}")
        summary = transcript_import(
            project=project, stream=io.BytesIO(data), source_name="t.jsonl", batch_size=2
        )
        results[mode] = (summary.imported, stored(project))
        # the second time, nothing new: both modes look the stored ids up
        again = transcript_import(project=project, stream=io.BytesIO(data), source_name="t.jsonl")
        assert again.imported == 0
    assert results["off"][0] == len(RECORDS)
    assert results["off"] == results["auto"]


def rating_project() -> tuple[Project, list]:
    lead = UserFactory()
    project = ProjectFactory(overlap=3, gold_rate=0, has_pairwise=True)
    MembershipFactory(project=project, user=lead, role=Role.LEAD)
    rubric_set(
        project=project,
        user=lead,
        criteria=[
            {"key": "helpfulness", "points": 5, "anchors": ["1", "2", "3", "4", "5"]},
            {"key": "safe", "scale": "binary"},
        ],
    )
    for i in range(3):
        pairwise_conversation(project, external_id=f"c{i}")
    items_queue(project=project, user=lead)
    raters = [UserFactory() for _ in range(2)]
    for rater in raters:
        MembershipFactory(project=project, user=rater, role=Role.EVALUATOR)
    return project, raters


def rate_everything(project: Project, raters: list) -> None:
    for n, rater in enumerate(raters):
        while (a := assignment_next(project=project, rater=rater)) is not None:
            judgment_submit(assignment=a.pk, rater=rater, answer=answer_for(a, n))
            n += 1


def answer_for(assignment, n: int) -> dict:
    """The same answer in terms of responses A and B, whichever side A is shown on."""
    if assignment.item.kind == TaskKind.PAIRWISE:
        a_better = assignment.item_id % 3 != 0  # the raters agree on each pair
        left = "left_better" if a_better == assignment.left_is_a else "right_better"
        return {"choice": left}
    return {"scores": {"helpfulness": 1 + n % 5, "safe": n % 2}}


def comparable_task(assignment) -> dict:
    view = task_view(assignment)
    return {k: v for k, v in view.items() if k not in ("assignment_id", "lease_expires_at")}


@both_modes
def test_next_and_submit_give_the_same_tasks_and_judgments_in_both_modes(settings, monkeypatch):
    """Two raters take the same queue, one with the accelerations off, one with them on:
    each next gives both the same item and task, each submit the same judgment."""
    monkeypatch.setattr(assignments.secrets, "randbits", lambda bits: 1)  # A shown left
    project, (plain, accelerated) = rating_project()
    n = 0
    while True:
        got = {}
        for mode, rater in (("off", plain), ("auto", accelerated)):
            in_mode(settings, mode)
            a = assignment_next(project=project, rater=rater, rng=random.Random(n))
            if a is None:
                got[mode] = None
                continue
            # asking again returns the live lease in both modes
            assert assignment_next(project=project, rater=rater).pk == a.pk
            task = comparable_task(a)
            j = judgment_submit(assignment=a.pk, rater=rater, answer=answer_for(a, n))
            got[mode] = (a.item_id, task, judgment_row(j))
        assert got["off"] == got["auto"]
        if got["off"] is None:
            break
        n += 1
    assert n == Judgment.objects.filter(rater=plain).count() > 3


def judgment_row(j: Judgment) -> dict:
    j = Judgment.objects.get(pk=j.pk)
    return {
        "item": j.item_id,
        "preference": j.preference,
        "version": j.version,
        "is_current": j.is_current,
        "rubric": j.rubric_id,
        "scores": sorted((s.criterion.key, s.value) for s in j.scores.all()),
    }


@both_modes
def test_quality_reads_the_same_data_in_both_modes(settings, tmp_path):
    settings.QUALITY_CACHE_DIR = str(tmp_path)
    project, raters = rating_project()
    rate_everything(project, raters)
    frames = {}
    for mode in ("off", "auto", "auto"):  # the second auto read is the incremental one
        in_mode(settings, mode)
        data = quality_data.load(project)
        j = data.judgments.sort_values("judgment_id").reset_index(drop=True)
        s = data.scores.sort_values(["judgment_id", "criterion_key"]).reset_index(drop=True)
        if mode in frames:
            assert data.read == "incremental"
        else:
            frames[mode] = (j, s, data.gold_answers, sorted(data.criteria))
        for got, want in zip((j, s), frames["off"][:2], strict=True):
            pd.testing.assert_frame_equal(got, want, check_like=True)
    assert len(frames["off"][0]) > 3
    assert frames["off"][2:] == frames["auto"][2:]


@both_modes
@pytest.mark.parametrize(
    "options",
    [
        {"format": "trl"},
        {"format": "trl", "file_type": "parquet"},
        {"format": "hh-rlhf"},
        {"format": "rubric-scores", "file_type": "csv"},
        {"format": "trl", "filters": ExportFilters(include_external=False), "min_raters": 2},
    ],
    ids=lambda o: "-".join(str(v) for v in o.values()),
)
def test_export_writes_the_same_bytes_in_both_modes(settings, tmp_path, options):
    settings.EXPORT_CACHE_DIR = str(tmp_path / "cache")
    project, raters = rating_project()
    rate_everything(project, raters)
    files = {}
    for mode in ("off", "auto"):
        in_mode(settings, mode)
        result = run_export(
            project=project,
            options=ExportOptions(**options),
            out_dir=tmp_path / mode,
            base_name="out",
        )
        files[mode] = {f.name: (tmp_path / mode / f.name).read_bytes() for f in result.files}
    assert files["off"] == files["auto"]
    assert any(len(b) > 100 for b in files["off"].values())
