"""The public HH-RLHF file goes in and comes back out byte for byte, line for line."""

import gzip
from pathlib import Path

import pytest

from conversations.services.imports import transcript_import
from exports.pipeline import ExportOptions, run_export
from ratings.services.judgment_import import source_ranks_import

pytestmark = pytest.mark.django_db
HH_FILE = (
    Path(__file__).resolve().parents[1]
    / "conversations"
    / "data"
    / "hh_rlhf_harmless_base_test.jsonl.gz"
)


def test_hh_import_then_export_is_byte_identical(project, tmp_path):
    project.has_scoring = False
    project.save()
    with HH_FILE.open("rb") as stream:
        assert (
            transcript_import(project=project, stream=stream, source_name=HH_FILE.name).imported
            == 2312
        )
    source_ranks_import(project=project)
    result = run_export(
        project=project, options=ExportOptions(format="hh-rlhf"), out_dir=tmp_path, base_name="hh"
    )
    assert result.counts["rows_written"] == {"all": 2312} and result.counts["dropped"] == {}
    exported = (tmp_path / "hh.jsonl").read_bytes()
    assert exported == gzip.decompress(HH_FILE.read_bytes())
