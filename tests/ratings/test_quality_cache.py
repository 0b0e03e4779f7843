"""Incremental reading of the quality data: the cached frames plus the new judgments equal a
full read, whatever happened in between (new judgments, edits, gold promotion), and anything
the cache cannot explain falls back to a full read."""

import json

import pandas as pd
import pytest
from django.utils import timezone

from conversations.models import Role
from ratings.accel import quality_read
from ratings.models import Item, Judgment, QualityRun, Score, TaskKind
from ratings.quality_data import Fingerprint, load
from ratings.services.judgments import judgment_revise
from ratings.services.quality import quality_compute

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # the COPY read's cache


def frames(data):
    j = data.judgments.sort_values("judgment_id").reset_index(drop=True)
    s = data.scores.sort_values(["judgment_id", "criterion_key"]).reset_index(drop=True)
    return j, s


def assert_same_as_full_read(project, data):
    full = load(project, use_cache=False)
    assert full.read == "full"
    for got, want in zip(frames(data), frames(full), strict=True):
        pd.testing.assert_frame_equal(got, want, check_like=True)


def add_judgment(project, rater, value):
    """A judgment by ``rater`` (a newcomer) on a score item."""
    item = Item.objects.filter(project=project, kind=TaskKind.SCORE).first()
    j = Judgment.objects.create(
        item=item, rater=rater, created_at=timezone.now(), time_on_task_ms=9000
    )
    crit = project.rubrics.get(is_current=True).criteria.get(key="helpfulness")
    Score.objects.create(judgment=j, criterion=crit, value=value)
    return j


def test_second_read_is_incremental_and_equal_to_a_full_read(judged, member):
    project, raters = judged
    first = load(project)
    assert first.read == "full"
    assert load(project).read == "incremental"  # nothing new: the cache alone
    add_judgment(project, member(Role.EVALUATOR), 4)
    data = load(project)
    assert data.read == "incremental"
    assert len(data.judgments) == len(first.judgments) + 1
    assert_same_as_full_read(project, data)


def test_an_edit_replaces_the_cached_version(judged):
    project, raters = judged
    load(project)
    project.allow_edits = True
    project.save()
    old = Judgment.objects.filter(
        item__project=project, item__kind=TaskKind.PAIRWISE, rater=raters[0]
    ).first()
    new = judgment_revise(
        judgment=old, rater=raters[0], answer={"choice": "tie", "rationale": "on reflection"}
    )
    data = load(project)
    assert data.read == "incremental"
    ids = set(data.judgments["judgment_id"])
    assert new.pk in ids and old.pk not in ids
    row = data.judgments.set_index("judgment_id").loc[new.pk]
    assert row["preference"] == 0  # it was -1 or 1
    assert_same_as_full_read(project, data)


def test_gold_promotion_is_seen_without_new_judgments(judged):
    project, _ = judged
    load(project)
    item = Item.objects.filter(project=project).first()
    Item.objects.filter(pk=item.pk).update(is_gold=True, gold_answer={"preference": 1})
    data = load(project)
    assert data.read == "incremental"
    assert (data.judgments.loc[data.judgments["item_id"] == item.pk, "is_gold"] == 1).all()
    assert_same_as_full_read(project, data)


def test_a_cache_that_does_not_match_the_database_is_not_used(judged):
    """A judgment committed late with an id below the cached maximum is missing from the
    cache: the fingerprint check catches it and the read falls back to a full one."""
    project, _ = judged
    load(project)
    path = quality_read.cache_dir(project.pk)
    _, judgments, scores = quality_read.read_cache(path)
    dropped = int(judgments["judgment_id"].iloc[3])
    judgments = judgments[judgments["judgment_id"] != dropped].reset_index(drop=True)
    scores = scores[scores["judgment_id"] != dropped].reset_index(drop=True)
    quality_read.write_cache(path, Fingerprint.of_frame(judgments), judgments, scores)
    data = load(project)
    assert data.read == "full"
    assert dropped in set(data.judgments["judgment_id"])
    assert load(project).read == "incremental"  # the full read rewrote the cache


def test_unreadable_or_foreign_cache_means_a_full_read(judged, settings):
    project, _ = judged
    load(project)
    path = quality_read.cache_dir(project.pk)
    quality_read.wait_for_write(path)  # the cache is written in the background
    (path / "judgments.arrow").write_bytes(b"not an arrow file")
    assert load(project).read == "full"
    quality_read.wait_for_write(path)  # the full read rewrote the cache
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "format": -1}))
    assert load(project).read == "full"
    settings.QUALITY_CACHE_DIR = ""
    assert load(project).read == "full" and load(project).read == "full"


def test_runs_record_how_they_read_and_force_reads_everything(judged, member):
    project, raters = judged
    first = quality_compute(project_id=project.pk, n_boot=0)
    assert first.timings["load_incremental"] == 0
    add_judgment(project, member(Role.EVALUATOR), 2)
    second = quality_compute(project_id=project.pk, n_boot=0)
    assert second.pk != first.pk and second.timings["load_incremental"] == 1
    assert second.n_judgments == first.n_judgments + 1
    forced = quality_compute(project_id=project.pk, n_boot=0, force=True)
    assert forced.timings["load_incremental"] == 0
    assert QualityRun.objects.filter(project=project).count() == 3
