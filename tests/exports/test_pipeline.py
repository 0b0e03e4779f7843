"""Exports: every format and file type, aggregation and its rules, the split, the manifest."""

import gzip
import hashlib
import json

import pyarrow.parquet as pq
import pytest

from exports.canonical import ExportFilters
from exports.pipeline import ExportOptions, run_export, split_of
from exports.pseudonyms import rater_pseudonym

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("accel_mode")]


def export(project, tmp_path, fmt, **kw):
    return run_export(
        project=project, options=ExportOptions(format=fmt, **kw), out_dir=tmp_path, base_name="out"
    )


def read_jsonl(path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_trl_standard_keeps_decisive_pairs_and_counts_what_it_drops(exportable, tmp_path):
    project, _, pairs = exportable
    result = export(project, tmp_path, "trl")
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert len(rows) == 4  # pairs 0, 1, 4, 5
    assert result.counts["dropped"] == {"both_bad": 1, "tie": 1}
    first = rows[0]
    assert first["prompt"] == "What is the capital of France?"
    a, b = pairs[0].response, pairs[0].response_b
    assert (first["chosen"], first["rejected"]) == (a.content, b.content)
    second = rows[1]
    assert second["chosen"] == pairs[1].response_b.content  # B won


def test_min_raters_and_min_agreement_are_opt_in_rules(exportable, tmp_path):
    project, _, _ = exportable
    result = export(project, tmp_path, "trl", min_raters=2, min_agreement=0.9)
    assert result.counts["dropped"]["fewer_raters_than_min_raters"] == 1
    # pairs 0, 2 and 5: rules apply in order, so the tie of pair 2 is counted here
    assert result.counts["dropped"]["agreement_below_min_agreement"] == 3
    assert result.counts["rows_written"] == {"all": 1}


def test_keeping_both_bad_gives_kto_negatives(exportable, tmp_path):
    project, _, pairs = exportable
    export(project, tmp_path, "kto", kto_source="pairwise", both_bad="keep")
    rows = read_jsonl(tmp_path / "out.jsonl")
    # 4 decisive pairs give one positive and one negative each; the both-bad pair two negatives
    assert len(rows) == 10
    assert sum(r["label"] for r in rows) == 4


@pytest.mark.parametrize("fmt", ["trl-conversational", "trl-implicit", "openai-dpo", "hh-rlhf"])
def test_each_preference_format_has_its_fields(exportable, tmp_path, fmt):
    project, _, _ = exportable
    export(project, tmp_path, fmt)
    row = read_jsonl(tmp_path / "out.jsonl")[0]
    expected = {
        "trl-conversational": {"prompt", "chosen", "rejected"},
        "trl-implicit": {"chosen", "rejected", "margin"},
        "openai-dpo": {"input", "preferred_output", "non_preferred_output"},
        "hh-rlhf": {"chosen", "rejected"},
    }[fmt]
    assert set(row) == expected
    if fmt == "trl-implicit":
        assert row["chosen"][0] == {"role": "user", "content": "What is the capital of France?"}
        assert row["chosen"][-1]["role"] == "assistant" and row["margin"] == 1.0
    if fmt == "hh-rlhf":
        assert row["chosen"].startswith("\n\nHuman: What is the capital of France?\n\nAssistant: ")


def test_kto_from_scores_and_rubric_score_rows(exportable, tmp_path, raters=None):
    project, raters, _ = exportable
    export(project, tmp_path, "kto")
    labels = [r["label"] for r in read_jsonl(tmp_path / "out.jsonl")]
    assert sorted(labels) == [False, True]  # mean 4.67 good, mean 1.33 bad
    export(project, tmp_path, "rubric-scores")
    rows = read_jsonl(tmp_path / "out.jsonl")
    helpful = [r for r in rows if r["criterion"] == "helpfulness"]
    assert [r["score"] for r in helpful] == [pytest.approx(14 / 3), pytest.approx(4 / 3)]
    assert helpful[0]["n_raters"] == 3 and helpful[0]["scores"] == [5.0, 4.0, 5.0]
    assert helpful[0]["raters"][0] == rater_pseudonym(
        project.pk, raters[0].pk
    )  # never the user name
    assert "r0" not in json.dumps(rows)


@pytest.mark.parametrize(
    ("file_type", "compress"),
    [("jsonl", True), ("parquet", False), ("parquet", True), ("csv", False), ("csv", True)],
)
def test_file_types(exportable, tmp_path, file_type, compress):
    project, _, _ = exportable
    result = export(project, tmp_path, "trl-conversational", file_type=file_type, compress=compress)
    info = result.files[0]
    path = tmp_path / info.name
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.rows == 4
    if file_type == "parquet":
        if compress:
            raw = gzip.decompress(path.read_bytes())
            (tmp_path / "x.parquet").write_bytes(raw)
            path = tmp_path / "x.parquet"
        table = pq.read_table(path)
        assert table.num_rows == 4 and table.column_names == ["prompt", "chosen", "rejected"]


def test_split_is_deterministic_and_never_shares_a_prompt(project, lead, member, tmp_path):
    from ratings.models import Item
    from ratings.services.items import items_queue
    from tests.exports.conftest import vote
    from tests.factories import pairwise_conversation

    for i in range(60):
        conv = pairwise_conversation(project, external_id=f"s{i}")
        conv.messages.filter(position=0).update(content=f"Question {i % 40}")  # 20 prompts repeat
    items_queue(project=project, user=lead, kinds=("pairwise",))
    rater = member("evaluator")
    for item in Item.objects.filter(project=project):
        vote(item, rater, -1)
    result = export(project, tmp_path, "trl", test_fraction=0.3, seed=7)
    train = read_jsonl(tmp_path / "out.train.jsonl")
    test = read_jsonl(tmp_path / "out.test.jsonl")
    assert len(train) + len(test) == 60 and test and train
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
    again = export(project, tmp_path / "again", "trl", test_fraction=0.3, seed=7)
    assert [f.sha256 for f in again.files] == [f.sha256 for f in result.files]
    assert split_of([{"role": "user", "content": "x"}], 7, 0.3) == split_of(
        [{"role": "user", "content": "x"}], 7, 0.3
    )


def test_manifest_and_card(exportable, tmp_path):
    project, _, _ = exportable
    result = export(
        project, tmp_path, "trl", filters=ExportFilters(exclude_gold=True), min_raters=1
    )
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["source_project"]["slug"] == project.slug
    assert manifest["filters"]["exclude_gold"] is True
    assert manifest["aggregation"]["method"] == "majority"
    assert manifest["counts"]["dropped"] == {"both_bad": 1, "tie": 1}
    assert manifest["rubric_versions"] == [1] and manifest["guidelines_versions"] == [1]
    assert (
        manifest["files"][0]["sha256"]
        == hashlib.sha256((tmp_path / "out.jsonl").read_bytes()).hexdigest()
    )
    assert manifest["rater_identities"] == "pseudonymised"
    card = result.card_path.read_text()
    assert card.startswith("---\nconfigs:") and "| both_bad | 1 |" in card


def test_filters_external_and_flagged_raters(exportable, tmp_path):
    from django.utils import timezone

    from ratings.models import DriftFlag, Judgment

    project, raters, pairs = exportable
    Judgment.objects.filter(item=pairs[4]).update(is_external=True)
    result = export(project, tmp_path, "trl", filters=ExportFilters(include_external=False))
    assert result.counts["rows_written"]["all"] == 3
    DriftFlag.objects.create(
        project=project,
        rater=raters[2],
        detector="agreement",
        window_kind="count",
        window_start=timezone.now(),
        window_end=timezone.now(),
    )
    flagged = export(
        project, tmp_path / "f", "trl", filters=ExportFilters(exclude_flagged_raters=True)
    )
    # without rater 2, pair 2 (A, B) is a tie and pair 4 (only rater 0? no: rater 0 voted B) stays
    assert flagged.counts["dropped"]["tie"] == 1


@pytest.mark.parametrize("method", ["mean", "dawid-skene", "weighted"])
def test_other_aggregations_run_and_are_recorded(exportable, tmp_path, method):
    project, _, _ = exportable
    result = export(project, tmp_path, "trl", aggregation=method)
    assert result.manifest["aggregation"]["method"] == method
    assert result.counts["rows_written"]["all"] >= 3


def test_a_failed_export_leaves_no_file(project, lead, tmp_path):
    with pytest.raises(ValueError, match="Likert"):
        export(project, tmp_path, "kto")
    assert list(tmp_path.iterdir()) == []
