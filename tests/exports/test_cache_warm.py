"""Queued pairs have their text encoded for exports once committed, so that a project's first
export reads only votes (exports/accel/warm.py); the export then writes the same bytes."""

import io
import json
import random
import time
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from conversations.models import Message, Role
from conversations.services.projects import membership_set
from exports.accel import cache as text_cache
from exports.accel import decisions
from exports.accel.warm import warm_cache
from exports.canonical import ExportFilters
from ratings.models import Item, Judgment, TaskKind
from ratings.services.items import items_queue
from ratings.services.judgment_import import judgment_import
from ratings.services.rubrics import rubric_set
from tests.exports.test_fast import assert_same, both, conversation, parquet_export

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # the export cache
ALL = ExportFilters(exclude_gold=False)
SHAPES = ["user", "none", "system+user", "multi", "system only", "gap", "tool"]

SCORING = [{"key": "helpful", "anchors": ["Not at all", "Fully"]}]


def all_pairs(project):
    return decisions.pairs(project, ALL)


def cached(project, store=text_cache.FragmentCache) -> bool:
    """Whether the cache holds every pairwise item of the project, current."""
    ids, stamps = all_pairs(project)
    return len(ids) > 0 and store(project.pk).positions(ids, stamps) is not None


def tricky_conversations(project, n: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    for k in range(n):
        conversation(project, rng, SHAPES[k % len(SHAPES)])


def vote_all(project, lead) -> None:
    rng = random.Random(5)
    for item in Item.objects.filter(project=project, kind=TaskKind.PAIRWISE):
        Judgment.objects.create(
            item=item, rater=lead, preference=rng.choice([-2, -1, 1, 2]), created_at=timezone.now()
        )


def count_encoding(monkeypatch) -> list[int]:
    """Pairs encoded by the export caches from now on (their ``built``), per cache object."""
    built: list = []
    ensure, rebuild = text_cache.FragmentCache.ensure, text_cache.FragmentCache.rebuild

    def ensure_spy(self, *args, **kwargs):
        try:
            return ensure(self, *args, **kwargs)
        finally:
            built.append(self.built)

    def rebuild_spy(self, *args, **kwargs):
        for batch in rebuild(self, *args, **kwargs):
            built.append(len(batch[0]))
            yield batch

    monkeypatch.setattr(text_cache.FragmentCache, "ensure", ensure_spy)
    monkeypatch.setattr(text_cache.FragmentCache, "rebuild", rebuild_spy)
    return built


def test_queued_pairs_are_encoded_once_committed_and_the_first_export_only_reads(
    project, lead, tmp_path, django_capture_on_commit_callbacks, monkeypatch
):
    tricky_conversations(project, 14)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        counts = items_queue(project=project, user=lead)
        assert counts[TaskKind.PAIRWISE] == 14
        assert not cached(project)  # nothing before the commit
    assert len(callbacks) == 1
    callbacks[0]()  # the commit: the (eager) task runs
    assert cached(project) and cached(project, text_cache.TextCache)
    vote_all(project, lead)
    built = count_encoding(monkeypatch)
    assert_same(*both(project, tmp_path, "warm"))
    parquet_export(project, tmp_path / "parquet")
    assert built and not any(built), "the first export had to encode pairs"


def test_a_rolled_back_queue_warms_nothing(project, lead, django_capture_on_commit_callbacks):
    tricky_conversations(project, 3)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        items_queue(project=project, user=lead)
        raise RuntimeError("the request failed after queuing")
    assert callbacks == []
    assert not Item.objects.filter(project=project).exists()


def test_queuing_only_scoring_items_or_with_the_setting_off_sends_nothing(
    project, lead, settings, django_capture_on_commit_callbacks
):
    tricky_conversations(project, 3)
    rubric_set(project=project, user=lead, criteria=SCORING)  # score items need one
    with django_capture_on_commit_callbacks() as callbacks:
        items_queue(project=project, user=lead, kinds=(TaskKind.SCORE,))
    assert callbacks == []
    settings.EXPORT_CACHE_WARM = False
    with django_capture_on_commit_callbacks() as callbacks:
        assert items_queue(project=project, user=lead)[TaskKind.PAIRWISE] == 3
    assert callbacks == []


def test_new_pairs_are_appended_and_a_second_warm_encodes_nothing(project, lead):
    tricky_conversations(project, 5)
    items_queue(project=project, user=lead)
    first = warm_cache(project.pk)
    assert (first["pairs"], first["encoded_json"], first["encoded_text"]) == (5, 5, 5)
    assert warm_cache(project.pk)["encoded_json"] == 0
    tricky_conversations(project, 4, seed=9)
    items_queue(project=project, user=lead)
    third = warm_cache(project.pk)
    assert (third["pairs"], third["encoded_json"], third["encoded_text"]) == (9, 4, 4)
    assert cached(project) and cached(project, text_cache.TextCache)


def test_changed_text_of_a_cached_pair_is_encoded_again(project, lead, tmp_path):
    tricky_conversations(project, 4)
    items_queue(project=project, user=lead)
    warm_cache(project.pk)
    item = Item.objects.filter(project=project, kind=TaskKind.PAIRWISE).order_by("id")[1]
    Message.objects.filter(pk=item.response_id).update(content="edited \u2028 answer")
    # the cache is keyed by id and creation time: an item made again gets a new time
    Item.objects.filter(pk=item.pk).update(created_at=item.created_at.replace(microsecond=1))
    assert warm_cache(project.pk)["encoded_json"] == 4  # not a suffix: all again
    vote_all(project, lead)
    general, fast_result = both(project, tmp_path, "edited")
    assert_same(general, fast_result)
    # split on newlines only: a line may hold U+2028 as it is (valid JSON)
    lines = (tmp_path / "fast" / "edited.jsonl").read_bytes().splitlines()
    assert any("edited \u2028 answer" in json.loads(line).values() for line in lines)


def test_imported_judgments_that_create_pairs_warm_them(
    project, lead, django_capture_on_commit_callbacks
):
    tricky_conversations(project, 2)
    convs = list(project.conversations.order_by("id"))
    records = []
    for n, conv in enumerate(convs):
        records.append(
            {
                "conversation_id": conv.external_id,
                "candidate_a": 0,
                "candidate_b": 1,
                "rater": f"ext:{n}",
                "created_at": "2024-05-03T10:00:00Z",
                "preference": {"winner": "a"},
            }
        )
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        summary = judgment_import(
            project=project, stream=io.BytesIO(data), source_name="ext.jsonl", user=lead
        )
    assert summary.items_created == 2
    assert len(callbacks) == 1
    assert cached(project)


def test_the_command_warms_named_projects_and_refuses_unknown_ones(project, lead):
    tricky_conversations(project, 3)
    items_queue(project=project, user=lead)
    out = StringIO()
    call_command("export_cache_warm", "--project", project.slug, stdout=out)
    assert f"{project.slug}: 3 pairs; encoded 3 as JSON and 3 as text" in out.getvalue()
    assert cached(project)
    with pytest.raises(CommandError, match="no project with slug nope"):
        call_command("export_cache_warm", "--project", "nope")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_warms_the_cache_of_pairs_queued_in_a_request(worker, project, lead):
    tricky_conversations(project, 9)
    items_queue(project=project, user=lead)
    deadline = time.monotonic() + 60
    while not (cached(project) and cached(project, text_cache.TextCache)):
        assert worker.poll() is None, worker.stdout.read().decode()
        assert time.monotonic() < deadline, "the worker did not warm the cache in 60 s"
        time.sleep(0.2)
    ids, _ = all_pairs(project)
    assert np.array_equal(text_cache.FragmentCache(project.pk).index[0], ids)


def test_a_warm_that_cannot_be_sent_does_not_fail_the_queueing(
    project, lead, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    from kombu.exceptions import OperationalError

    from exports.tasks import export_cache_warm

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(export_cache_warm, "delay", broker_down)
    tricky_conversations(project, 2)
    with django_capture_on_commit_callbacks(execute=True):
        assert items_queue(project=project, user=lead)[TaskKind.PAIRWISE] == 2
    assert Item.objects.filter(project=project, kind=TaskKind.PAIRWISE).count() == 2
    assert "export cache warm not sent" in caplog.text
    assert not cached(project)


def cache_files(store) -> set[str]:
    return {p.name for p in store.dir.iterdir() if p.is_file() and p.name != "current"}


def test_appended_pairs_are_written_alone_and_files_are_merged_past_the_limit(
    project, lead, tmp_path, monkeypatch
):
    monkeypatch.setattr(text_cache, "BATCH", 3)
    monkeypatch.setattr(text_cache, "MAX_SEGMENTS", 3)
    tricky_conversations(project, 7)
    items_queue(project=project, user=lead)
    warm_cache(project.pk)
    first = text_cache.FragmentCache(project.pk)
    first_file = first.dir / f"{first.name}.arrow"
    written_at = first_file.stat().st_mtime_ns
    assert first.segments == [first.name] and cache_files(first) == {
        f"{first.name}.arrow",
        f"{first.name}.npy",
    }
    # two appends: the first file is kept as it is; each generation lists its files
    for n, seed in enumerate((11, 12), start=1):
        tricky_conversations(project, 2, seed=seed)
        items_queue(project=project, user=lead)
        assert warm_cache(project.pk)["encoded_json"] == 2
        store = text_cache.FragmentCache(project.pk)
        assert len(store.segments) == 1 + n and store.segments[0] == first.name
        assert first_file.stat().st_mtime_ns == written_at
        with store.reader() as reader:
            assert reader.readers[-1].num_record_batches == 1  # the two new pairs only
        assert cache_files(store) == {
            *(f"{g}.arrow" for g in store.segments),
            f"{store.name}.npy",
            f"{store.name}.segments",
        }
    vote_all(project, lead)
    assert_same(*both(project, tmp_path / "segments", "out"))
    general = parquet_export(project, tmp_path / "pq-general", engine="general")
    assert_same(general, parquet_export(project, tmp_path / "pq-fast"))
    # a third append would make four files: the generation is written into one again
    tricky_conversations(project, 1, seed=13)
    items_queue(project=project, user=lead)
    warm_cache(project.pk)
    merged = text_cache.FragmentCache(project.pk)
    assert merged.segments == [merged.name] and merged.index.shape[1] == 12
    assert cache_files(merged) == {f"{merged.name}.arrow", f"{merged.name}.npy"}
    assert_same(*both(project, tmp_path / "merged", "out"))


def test_a_lost_segment_file_makes_the_cache_count_as_missing(project, lead, tmp_path):
    tricky_conversations(project, 3)
    items_queue(project=project, user=lead)
    warm_cache(project.pk)
    tricky_conversations(project, 2, seed=21)
    items_queue(project=project, user=lead)
    warm_cache(project.pk)
    store = text_cache.FragmentCache(project.pk)
    assert len(store.segments) == 2
    (store.dir / f"{store.segments[0]}.arrow").unlink()
    assert text_cache.FragmentCache(project.pk).index.shape[1] == 0
    assert warm_cache(project.pk)["encoded_json"] == 5  # all of it again
    vote_all(project, lead)
    assert_same(*both(project, tmp_path, "out"))


def test_the_periodic_warm_covers_every_project_with_pairs(project, lead, settings):
    from exports.tasks import export_cache_warm_all
    from tests.factories import ProjectFactory

    assert settings.CELERY_BEAT_SCHEDULE["export-cache-warm-all"]["schedule"] == 3600
    tricky_conversations(project, 3)
    settings.EXPORT_CACHE_WARM = False  # queued while warming was off: nothing warmed
    items_queue(project=project, user=lead)
    scores_only = ProjectFactory()
    membership_set(project=scores_only, user=lead, role=Role.LEAD)
    rubric_set(project=scores_only, user=lead, criteria=SCORING)
    tricky_conversations(scores_only, 2)
    items_queue(project=scores_only, user=None, kinds=(TaskKind.SCORE,))
    export_cache_warm_all()  # off: does nothing
    assert not cached(project)
    settings.EXPORT_CACHE_WARM = True
    export_cache_warm_all()  # the eager tasks run here
    assert cached(project) and cached(project, text_cache.TextCache)
    assert not text_cache.FragmentCache(scores_only.pk).dir.exists()


def test_files_no_generation_uses_are_removed_once_old(project, lead):
    import os

    tricky_conversations(project, 3)
    items_queue(project=project, user=lead)
    warm_cache(project.pk)
    store = text_cache.FragmentCache(project.pk)
    old_orphan = store.dir / "0badc0de.arrow"
    partial = store.dir / ".feedbeef.npy.partial"
    recent = store.dir / "c0ffee.arrow"  # perhaps a concurrent writer's, in progress
    for path in (old_orphan, partial, recent):
        path.write_bytes(b"x")
    hours_ago = time.time() - 2 * text_cache.ORPHAN_SECONDS
    for path in (old_orphan, partial):
        os.utime(path, (hours_ago, hours_ago))
    tricky_conversations(project, 1, seed=31)
    items_queue(project=project, user=lead)
    warm_cache(project.pk)
    assert not old_orphan.exists() and not partial.exists()
    assert recent.exists()
    store = text_cache.FragmentCache(project.pk)
    assert cache_files(store) == {
        *(f"{g}.arrow" for g in store.segments),
        f"{store.name}.npy",
        f"{store.name}.segments",
        "c0ffee.arrow",
    }


def test_a_warm_for_a_project_that_no_longer_exists_does_nothing(db):
    assert warm_cache(987654) == {"pairs": 0, "encoded_json": 0, "encoded_text": 0, "seconds": 0.0}
