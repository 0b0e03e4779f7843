"""The fast export writes what the general path writes, byte for byte, and only when it covers
the request: tricky text, every prompt shape, varied votes, filters and rules, a cold and a
warm cache, and a failure that leaves nothing behind."""

import gzip
import json
import random
from datetime import timedelta

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from conversations.models import Message
from exports.accel import cache as text_cache
from exports.accel import fast, reading
from exports.canonical import ExportFilters
from exports.pipeline import ExportOptions, run_export
from exports.writers import RowWriter
from ratings.models import DriftFlag, FlagState, Item, Judgment, TaskKind
from ratings.services.rubrics import rubric_set
from tests.factories import ConversationFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # the fast export

# every control character PostgreSQL text can hold, the characters JSON escapes or might,
# and non-ASCII of every width, including lone combining marks and line separators
TRICKY = [chr(c) for c in range(1, 32)] + [
    "\x7f",
    '"',
    "\\",
    "/",
    "\\u0041",
    "</script>",
    "é",
    "漢字",
    "שלום",
    "مرحبا",
    "😀",
    "👩‍👩‍👧",
    "\u2028",
    "\u2029",
    "\u0301",
    "\ufeff",
    "\U0010fffd",
    "plain words ",
    "\r\n",
    "",
]


def text(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choice(TRICKY) for _ in range(n))


def conversation(project, rng: random.Random, shape: str):
    """A conversation whose candidates 0 and 1 answer the prompt ``shape`` describes."""
    conv = ConversationFactory(project=project)
    turns = {
        "user": [("user", 0)],
        "none": [],
        "system+user": [("system", 0), ("user", 1)],
        "multi": [("user", 0), ("assistant", 1), ("user", 2)],
        "system only": [("system", 0)],
        "gap": [("user", 2)],
        "tool": [("user", 0), ("tool", 1)],
    }[shape]
    for role, position in turns:
        Message.objects.create(conversation=conv, position=position, role=role, content=text(rng))
    at = max((p for _, p in turns), default=-1) + 1
    a, b = (
        Message.objects.create(
            conversation=conv, position=at, candidate=c, role="assistant", content=text(rng, 30)
        )
        for c in (0, 1)
    )
    return conv, a, b


@pytest.fixture
def tricky(project, lead):
    return make_tricky(project, lead)


def pair_item(project, rng: random.Random, shape: str, **fields) -> Item:
    """A pairwise item on a new conversation of ``conversation(project, rng, shape)``."""
    conv, a, b = conversation(project, rng, shape)
    return Item.objects.create(
        project=project,
        kind=TaskKind.PAIRWISE,
        conversation=conv,
        response=a,
        response_b=b,
        **fields,
    )


def make_tricky(project, lead):
    """40 pairs: tricky text, seven prompt shapes, 1-4 votes each (ties, both bad, no
    preference, external), gold pairs, two rubric versions, a flagged rater."""
    rng = random.Random(7)
    rubric1 = rubric_set(
        project=project,
        user=lead,
        criteria=[{"key": "helpful", "points": 5, "anchors": ["Poor", "Excellent"]}],
    )
    rubric2 = rubric_set(
        project=project,
        user=lead,
        criteria=[{"key": "kind", "points": 3, "anchors": ["Poor", "Excellent"]}],
    )
    raters = [UserFactory() for _ in range(4)]
    now = timezone.now()
    DriftFlag.objects.create(
        project=project,
        rater=raters[3],
        detector="test",
        window_kind="day",
        window_start=now,
        window_end=now,
        state=FlagState.OPEN,
    )
    shapes = ["user", "none", "system+user", "multi", "system only", "gap", "tool"]
    for n in range(40):
        item = pair_item(project, rng, shapes[n % len(shapes)], overlap=4, is_gold=n % 9 == 0)
        for k, rater in enumerate(rng.sample(raters, rng.randint(0 if n == 5 else 1, 4))):
            Judgment.objects.create(
                item=item,
                rater=rater,
                preference=rng.choice([-2, -1, -1, 0, 1, 1, 2, None]),
                both_bad=rng.random() < 0.2,
                is_external=rng.random() < 0.2,
                rubric=rng.choice([rubric1, rubric2, None]),
                guidelines_version=rng.choice([1, 2]),
                created_at=now - timedelta(days=2) + timedelta(hours=n, minutes=k),
            )
    return project


def both(project, tmp_path, name, **kw):
    """Run the general and the fast path on the same options; return both results."""
    options = ExportOptions(format="trl", **kw)
    results = {}
    for engine in ("general", "fast"):
        results[engine] = run_export(
            project=project,
            options=options,
            out_dir=tmp_path / engine,
            base_name=name,
            engine=engine,
        )
    return results["general"], results["fast"]


def assert_same(general, fast_result):
    def comparable(manifest):
        # a gzip header holds the time it was written: its sha256 may differ by that alone
        files = [
            {**f, "sha256": "-"} if f["name"].endswith(".gz") else f for f in manifest["files"]
        ]
        return {**{k: v for k, v in manifest.items() if k != "created_at"}, "files": files}

    assert comparable(fast_result.manifest) == comparable(general.manifest)
    for g, f in zip(general.files, fast_result.files, strict=True):
        g_path = general.manifest_path.parent / g.name
        f_path = fast_result.manifest_path.parent / f.name
        if g.name.endswith(".gz"):  # the gzip header holds the time: compare what it holds
            assert gzip.decompress(f_path.read_bytes()) == gzip.decompress(g_path.read_bytes())
        else:
            assert f_path.read_bytes() == g_path.read_bytes()
            assert f.sha256 == g.sha256


OPTION_SETS = [
    {},
    {"filters": ExportFilters(exclude_gold=True, exclude_flagged_raters=True)},
    {"filters": ExportFilters(include_external=False), "min_raters": 2, "min_agreement": 0.6},
    {"both_bad": "keep", "min_agreement": 0.5},
    {
        "filters": ExportFilters(
            date_from=timezone.now() - timedelta(days=2, hours=-10),
            date_to=timezone.now() - timedelta(days=1, hours=-6),
        )
    },
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=range(len(OPTION_SETS)))
def test_fast_jsonl_is_byte_identical_to_the_general_path(tricky, tmp_path, options):
    general, fast_result = both(tricky, tmp_path, "out", **options)
    assert general.files[0].rows > 3
    assert_same(general, fast_result)


def test_fast_parquet_and_gzip_are_identical_to_the_general_path(tricky, tmp_path):
    for kw in (
        {"file_type": "parquet"},
        {"compress": True},
        {"file_type": "parquet", "compress": True},
    ):
        general, fast_result = both(tricky, tmp_path, "x" + "".join(map(str, kw.values())), **kw)
        assert general.files[0].rows > 3
        assert_same(general, fast_result)


def test_the_text_really_is_tricky_and_every_line_parses(tricky, tmp_path):
    _, fast_result = both(tricky, tmp_path, "out")
    raw = (tmp_path / "fast" / "out.jsonl").read_bytes()
    lines = [json.loads(line) for line in raw.decode("utf-8").split("\n")[:-1]]
    joined = "".join(v for row in lines for v in row.values())
    assert all(chr(c) in joined for c in range(1, 32))
    assert "😀" in joined and "\u2028" in joined and '"' in joined and "\\" in joined
    assert {row["prompt"][:6] for row in lines} >= {"", "User: ", "System"}


def test_a_warm_cache_an_appended_pair_and_a_stale_entry_give_the_same_bytes(
    tricky, tmp_path, monkeypatch, lead
):
    monkeypatch.setattr(text_cache, "BATCH", 5)  # many batches, and short ones after appends
    general, cold = both(tricky, tmp_path / "1", "out")
    assert_same(general, cold)
    store = text_cache.FragmentCache(tricky.pk)
    assert store.index.shape[1] == 40  # every pair of the project, kept or not
    warm = run_export(
        project=tricky, options=ExportOptions(format="trl"), out_dir=tmp_path / "w", base_name="out"
    )
    assert (tmp_path / "w" / "out.jsonl").read_bytes() == (
        tmp_path / "1/general/out.jsonl"
    ).read_bytes()
    assert warm.files == cold.files
    # a new pair: encoded and appended, the rest reused
    item = pair_item(tricky, random.Random(1), "multi", overlap=1)
    Judgment.objects.create(item=item, rater=lead, preference=2, created_at=timezone.now())
    general, appended = both(tricky, tmp_path / "2", "out")
    assert_same(general, appended)
    store = text_cache.FragmentCache(tricky.pk)
    assert store.index.shape[1] == 41 and store.index[2].max() == 8  # 8 old batches + 1
    # an entry that no longer matches its pair (here: its creation time) is encoded again
    index = store.index.copy()
    index[1, 3] += 1
    np.save(store.dir / f"{store.name}.npy", index)
    general, rebuilt = both(tricky, tmp_path / "3", "out")
    assert_same(general, rebuilt)


@pytest.mark.parametrize(
    "kw",
    [
        {"format": "hh-rlhf"},
        {"format": "trl-conversational"},
        {"format": "trl", "file_type": "csv"},
        {"format": "trl", "aggregation": "mean"},
        {"format": "trl", "aggregation": "weighted"},
        {"format": "trl", "test_fraction": 0.3},
        {"format": "trl", "filters": ExportFilters(source="chat")},
        {"format": "trl", "filters": ExportFilters(model="model-a")},
    ],
)
def test_the_fast_path_is_not_taken_for_requests_it_does_not_cover(
    exportable, tmp_path, monkeypatch, kw
):
    project, _, _ = exportable
    options = ExportOptions(**kw)
    assert fast.refusal(options) is not None
    with pytest.raises(ValueError, match="does not cover"):
        run_export(project=project, options=options, out_dir=tmp_path, base_name="o", engine="fast")

    def forbidden(**_):
        raise AssertionError("the fast path was taken")

    monkeypatch.setattr(fast, "run_fast_export", forbidden)
    result = run_export(project=project, options=options, out_dir=tmp_path, base_name="o")
    assert result.manifest["format"] == kw["format"]


def test_the_common_request_takes_the_fast_path(exportable, tmp_path, monkeypatch):
    project, _, _ = exportable
    monkeypatch.setattr(
        "exports.pipeline.iter_records", lambda *a, **k: pytest.fail("general path taken")
    )
    for file_type in ("jsonl", "parquet"):
        result = run_export(
            project=project,
            options=ExportOptions(format="trl", file_type=file_type),
            out_dir=tmp_path,
            base_name=file_type,
        )
        assert result.counts["rows_written"] == {"all": 4}


def test_a_failure_leaves_no_file_that_looks_done(tricky, tmp_path, monkeypatch):
    calls = []

    def failing(self, data, rows):
        calls.append(rows)
        raise OSError("disk full")

    monkeypatch.setattr("exports.writers.RowWriter.write_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        run_export(
            project=tricky, options=ExportOptions(format="trl"), out_dir=tmp_path, base_name="out"
        )
    assert calls
    assert list(tmp_path.iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_threads_write_the_same_bytes_cold_and_warm(
    project, lead, tmp_path, monkeypatch
):
    """Committed rows: votes read by a second connection, a cold cache encoded by one
    connection per CPU, all in the export's snapshot."""
    monkeypatch.setattr(text_cache, "BATCH", 4)
    monkeypatch.setattr(fast.decisions, "CHUNK", 7)
    started = []
    real = text_cache.in_parallel

    def spy(*args):
        started.append(len(args[1]))
        return real(*args)

    monkeypatch.setattr(text_cache, "in_parallel", spy)
    ahead = []
    real_ahead = fast.read_ahead

    def spy_ahead(produce, depth=1):
        ahead.append(depth)
        return real_ahead(produce, depth)

    monkeypatch.setattr(fast, "read_ahead", spy_ahead)
    make_tricky(project, lead)
    for attempt in ("cold", "warm"):
        general, fast_result = both(project, tmp_path / attempt, "out")
        assert general.files[0].rows > 3
        assert_same(general, fast_result)
    assert started == [10]  # 40 pairs in batches of 4, encoded in parallel once
    assert len(ahead) == 2  # each fast export read its votes on a second connection
    # Parquet: row groups of 3 rows here; the texts' cache built in parallel while the
    # first export writes, then read by the second; the same bytes
    monkeypatch.setattr(RowWriter.__init__, "__defaults__", (3,))
    for attempt in ("cold", "warm"):
        general, fast_result = both(
            project, tmp_path / f"parquet-{attempt}", "out", file_type="parquet"
        )
        assert general.files[0].rows > 6
        assert_same(general, fast_result)
    assert started == [10, 10]  # built once, in parallel


def test_the_python_encoder_is_used_when_the_server_encodes_otherwise(
    tricky, tmp_path, monkeypatch
):
    monkeypatch.setattr(text_cache, "server_encodes_like_orjson", lambda: False)
    general, fast_result = both(tricky, tmp_path, "out")
    assert_same(general, fast_result)


def test_the_server_json_encoding_is_checked_on_every_character_class(db):
    assert text_cache.server_encodes_like_orjson()  # PostgreSQL 15 and later: the fast way
    assert all(chr(c) in reading.PROBE for c in range(1, 32))


def test_a_cache_that_never_matches_falls_back_to_the_general_path(tricky, tmp_path, monkeypatch):
    monkeypatch.setattr(text_cache.FragmentCache, "positions", lambda self, ids, stamps: None)
    with pytest.raises(fast.CacheMiss):
        run_export(
            project=tricky,
            options=ExportOptions(format="trl"),
            out_dir=tmp_path / "f",
            base_name="out",
            engine="fast",
        )
    assert not list((tmp_path / "f").glob("out.*"))
    auto = run_export(
        project=tricky, options=ExportOptions(format="trl"), out_dir=tmp_path / "a", base_name="out"
    )
    general = run_export(
        project=tricky,
        options=ExportOptions(format="trl"),
        out_dir=tmp_path / "g",
        base_name="out",
        engine="general",
    )
    assert auto.files == general.files


def test_projects_without_pairs_or_votes_give_the_same_empty_files(project, lead, tmp_path):
    for file_type in ("jsonl", "parquet"):
        general, fast_result = both(
            project, tmp_path / f"none-{file_type}", "out", file_type=file_type
        )
        assert_same(general, fast_result)
    make_tricky(project, lead)
    Judgment.objects.all().delete()
    for file_type in ("jsonl", "parquet"):
        general, fast_result = both(
            project, tmp_path / f"novote-{file_type}", "out", file_type=file_type
        )
        assert general.files[0].rows == 0
        assert_same(general, fast_result)


def parquet_export(project, out_dir, engine="fast", **kw):
    return run_export(
        project=project,
        options=ExportOptions(format="trl", file_type="parquet", **kw),
        out_dir=out_dir,
        base_name="out",
        engine=engine,
    )


@pytest.mark.parametrize("options", OPTION_SETS, ids=range(len(OPTION_SETS)))
def test_parquet_cold_then_warm_is_byte_identical_to_the_general_path(
    tricky, tmp_path, monkeypatch, options
):
    """Row groups of 4 rows taken from cache batches of 5 pairs: groups that span batches."""
    monkeypatch.setattr(text_cache, "BATCH", 5)
    monkeypatch.setattr(RowWriter.__init__, "__defaults__", (4,))
    general = parquet_export(tricky, tmp_path / "general", engine="general", **options)
    assert general.files[0].rows > 8  # several row groups
    built = []
    real = text_cache.TextCache.rebuild

    def spy(self, *args, **kwargs):
        built.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(text_cache.TextCache, "rebuild", spy)
    for attempt in ("cold", "warm"):
        assert_same(general, parquet_export(tricky, tmp_path / attempt, **options))
    assert len(built) == 1 and built[0].built == 40  # every pair of the project, once
    data = (tmp_path / "warm" / "out.parquet").read_bytes()
    assert data == (tmp_path / "cold" / "out.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "warm" / "out.parquet").num_row_groups > 2


def test_parquet_text_from_the_cache_really_is_tricky(tricky, tmp_path):
    parquet_export(tricky, tmp_path / "cold")
    parquet_export(tricky, tmp_path / "warm")
    rows = pq.read_table(tmp_path / "warm" / "out.parquet").to_pylist()
    joined = "".join(v for row in rows for v in row.values())
    assert all(chr(c) in joined for c in range(1, 32))
    assert {"😀", "\u2028", "漢字", "שלום", "\U0010fffd"} <= set(TRICKY) and all(
        x in joined for x in ("😀", "\u2028", "漢字", "שלום")
    )


def test_a_stale_or_missing_text_entry_is_built_again(tricky, tmp_path, monkeypatch, lead):
    monkeypatch.setattr(text_cache, "BATCH", 5)
    monkeypatch.setattr(RowWriter.__init__, "__defaults__", (4,))
    general = parquet_export(tricky, tmp_path / "general", engine="general")
    assert_same(general, parquet_export(tricky, tmp_path / "cold"))
    store = text_cache.TextCache(tricky.pk)
    assert store.index.shape[1] == 40 and store.dir.name == "text"
    # an entry whose creation time no longer matches: the whole cache is built again
    index = store.index.copy()
    index[1, 7] += 1
    np.save(store.dir / f"{store.name}.npy", index)
    assert_same(general, parquet_export(tricky, tmp_path / "stale"))
    rebuilt = text_cache.TextCache(tricky.pk)
    assert rebuilt.name != store.name and np.array_equal(rebuilt.index[1], store.index[1])
    # the generation's data file gone: built again
    (rebuilt.dir / f"{rebuilt.name}.arrow").unlink()
    assert_same(general, parquet_export(tricky, tmp_path / "missing"))
    assert text_cache.TextCache(tricky.pk).index.shape[1] == 40
    # a new pair: only it is encoded, the old batches are kept
    item = pair_item(tricky, random.Random(3), "system+user", overlap=1)
    Judgment.objects.create(item=item, rater=lead, preference=-1, created_at=timezone.now())
    general = parquet_export(tricky, tmp_path / "general2", engine="general")
    assert_same(general, parquet_export(tricky, tmp_path / "appended"))
    store = text_cache.TextCache(tricky.pk)
    assert store.index.shape[1] == 41 and store.index[2].max() == 8  # 8 old batches + 1
    assert store.built == 0  # read back: a warm cache


@pytest.mark.parametrize("damage", ["a batch missing", "another pair's text", "other times"])
def test_cached_text_that_does_not_match_is_never_written(tricky, tmp_path, monkeypatch, damage):
    """Batches that disagree with the index: the fast path refuses (CacheMiss) and the
    automatic choice writes the general path's bytes."""
    monkeypatch.setattr(text_cache, "BATCH", 5)
    general = parquet_export(tricky, tmp_path / "general", engine="general")
    parquet_export(tricky, tmp_path / "cold")
    real = text_cache.TextCache.batches

    def damaged(self):
        batches = list(real(self))
        if damage == "a batch missing":
            del batches[3]
        for k, (ids, stamps, batch) in enumerate(batches):
            if damage == "another pair's text":
                ids = ids + 1 if k == 2 else ids
            elif damage == "other times":
                stamps = stamps - 1 if k == 4 else stamps
            yield ids, stamps, batch

    monkeypatch.setattr(text_cache.TextCache, "batches", damaged)
    with pytest.raises(fast.CacheMiss):
        parquet_export(tricky, tmp_path / "forced")
    assert not list((tmp_path / "forced").glob("out.*"))
    assert_same(general, parquet_export(tricky, tmp_path / "auto", engine="auto"))


def test_parquet_is_snappy_without_dictionaries_for_free_text(exportable, tmp_path):
    project, _, _ = exportable
    parquet_export(project, tmp_path)
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    for k in range(3):
        column = meta.row_group(0).column(k)
        assert column.compression == "SNAPPY"
        assert (
            "RLE_DICTIONARY" not in column.encodings and "PLAIN_DICTIONARY" not in column.encodings
        )
    run_export(
        project=project,
        options=ExportOptions(format="rubric-scores", file_type="parquet"),
        out_dir=tmp_path / "scores",
        base_name="out",
    )
    meta = pq.ParquetFile(tmp_path / "scores" / "out.parquet").metadata
    paths = {
        meta.row_group(0).column(k).path_in_schema: meta.row_group(0).column(k)
        for k in range(meta.num_columns)
    }
    assert "RLE_DICTIONARY" in paths["criterion"].encodings  # few distinct values: a dictionary
    assert "RLE_DICTIONARY" not in paths["response"].encodings
