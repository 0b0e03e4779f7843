"""Reading ahead in a second thread (export jobs on PostgreSQL) gives exactly the records of
reading in the caller's thread, in the same order, and hands the thread's errors over."""

import threading

import pytest
from django.db import connection

from exports.accel.snapshot import read_ahead
from exports.canonical import ExportFilters, iter_records
from exports.pipeline import ExportOptions, run_export
from ratings.models import TaskKind


@pytest.mark.django_db(transaction=True)
def test_read_ahead_yields_the_same_records_as_reading_inline(exportable):
    project, _, _ = exportable
    assert not connection.in_atomic_block  # committed rows: a second connection sees them
    f = ExportFilters()
    for chunk in (1, 2, 5000):  # several chunks, and one
        inline = list(iter_records(project, TaskKind.PAIRWISE, f, chunk=chunk, ahead=False))
        ahead = list(iter_records(project, TaskKind.PAIRWISE, f, chunk=chunk, ahead=True))
        assert ahead == inline and len(inline) == 6


@pytest.mark.postgres  # reading ahead needs a second connection
@pytest.mark.django_db(transaction=True)
def test_an_export_job_reads_ahead_and_writes_the_same_bytes(exportable, tmp_path, monkeypatch):
    project, _, _ = exportable
    threads = []
    real = read_ahead

    def spy(produce, depth=1):
        threads.append(threading.current_thread().name)
        return real(produce, depth)

    for fmt in ("trl", "hh-rlhf", "rubric-scores"):
        monkeypatch.setattr("exports.canonical.read_ahead", spy)
        ahead = run_export(
            project=project,
            options=ExportOptions(format=fmt),
            out_dir=tmp_path / "a",
            base_name=fmt,
            engine="general",  # trl would take the fast path, which reads no records
        )
        monkeypatch.setattr(
            "exports.canonical.read_ahead", lambda produce, depth=1: produce()
        )  # inline
        inline = run_export(
            project=project,
            options=ExportOptions(format=fmt),
            out_dir=tmp_path / "b",
            base_name=fmt,
            engine="general",
        )
        assert [fi.sha256 for fi in ahead.files] == [fi.sha256 for fi in inline.files]
        assert ahead.files[0].rows > 0
    assert len(threads) == 3  # each export went through the read-ahead thread


def test_errors_in_the_reading_thread_reach_the_caller():
    def produce():
        yield [1]
        raise RuntimeError("the database went away")

    got = []
    with pytest.raises(RuntimeError, match="went away"):
        for item in read_ahead(produce):
            got.append(item)
    assert got == [[1]]


def test_stopping_early_stops_the_thread():
    produced = []

    def produce():
        for n in range(1000):
            produced.append(n)
            yield [n]

    for item in read_ahead(produce):
        if item == [2]:
            break
    assert len(produced) <= 5  # one item ahead, plus the one the thread was putting
    assert not [t for t in threading.enumerate() if t.name == "export-reader"]
