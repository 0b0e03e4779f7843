"""The import's fast path and its parsing process: the same rows as the general path."""

import io
import json
import multiprocessing
import os
import pickle
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction

from conversations.accel.binary import ID
from conversations.accel.copy_batches import unpack
from conversations.accel.copy_writer import CopyWriter
from conversations.accel.fastpath import native_copy_rows
from conversations.accel.foreign_keys import set_based_checks_possible
from conversations.importers import formats
from conversations.importers.formats import parse_native
from conversations.importers.records import SourceRecord
from conversations.models import Conversation, ImportJob, KBReference, Message, Project
from conversations.services.imports import ImportFailed, transcript_import

pytestmark = pytest.mark.django_db

TRICKY = 'tab\there, back\\slash, 100% sure, CR\r\nLF\n, quote " and café 東京 🙂 \\N \\.'
PLAIN_RECORDS = [
    {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
    {
        "id": "t-1",
        "occurred_at": "2024-05-01T12:00:00+02:00",
        "metadata": {"note": TRICKY, "n": [1, 2.5, None, True], "nested": {"a": "\\"}},
        "messages": [
            {"role": "developer", "content": TRICKY, "name": "sys\tname", "id": "m-1"},
            {"role": "user", "content": "  padded  ", "metadata": {}},
            {"role": "function", "content": "tool output", "name": "kb_search"},
            {
                "role": "assistant",
                "content": TRICKY * 3,
                "model": "bot-%d-v1",
                "metadata": {"latency_ms": 812, "text": "a\nb"},
            },
        ],
        "candidates": [],
    },
    {
        "id": "t-3",  # a microsecond before 2000: the timestamp's bytes are all 0xff
        "occurred_at": "1999-12-31T23:59:59.999999Z",
        "messages": [{"role": "assistant", "content": "A", "id": "x" * 255}],
    },
    {
        "id": "t-2",
        "occurred_at": "",
        "metadata": None,
        "messages": [{"role": "assistant", "content": "x" * 300, "name": "n" * 300}],
    },
]
UNUSUAL_RECORDS = [
    dict(PLAIN_RECORDS[0], candidates=[{"content": "B"}]),
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Q"}]}]},
    {"messages": [{"role": "assistant", "content": "A", "kb_references": []}]},
    {"messages": [{"role": ["user"], "content": "Q"}]},
    {"messages": [{"role": "assistant", "content": "A", "name": None}]},
    {"id": 7, "messages": [{"role": "assistant", "content": "A"}]},
    {"occurred_at": "2024-05-01T12:00:00", "messages": [{"role": "assistant", "content": "A"}]},
    {"messages": [{"role": "user", "content": "only a question"}]},
    {"messages": [{"role": "assistant", "content": " \n\t"}]},
    # what safe_json refuses, in each field this path stores (the general path names it)
    {"id": "a\x00", "messages": [{"role": "assistant", "content": "A"}]},
    {"messages": [{"role": "assistant", "content": "A\x00"}]},
    {"messages": [{"role": "assistant", "content": "A", "name": "\x00"}]},
    {"messages": [{"role": "assistant", "content": "A", "model": "\x00"}]},
    {"messages": [{"role": "assistant", "content": "A", "id": "\x00"}]},
    {"metadata": {"k\x00": 1}, "messages": [{"role": "assistant", "content": "A"}]},
    {"messages": [{"role": "assistant", "content": "A", "metadata": {"k": ["\x00"]}}]},
    {"metadata": {"a": [[[[]]]]}, "messages": [{"role": "assistant", "content": "A"}]},
    {"messages": [{"role": "assistant", "content": "A", "metadata": {"a": [[]]}}]},
]


def writer() -> CopyWriter:
    return CopyWriter(
        project_id=1,
        source_format="native",
        source_name="file.jsonl",
        import_job_id=None,
        author_id=None,
        now=datetime(2024, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize("record", PLAIN_RECORDS)
def test_the_fast_path_gives_the_rows_of_the_general_path(record):
    w = writer()
    value = orjson.loads(json.dumps(record))
    fast = native_copy_rows(w, value, 3)
    conv = parse_native(SourceRecord(line=3, value=value))[0]
    digest = conv.content_hash()
    external_id = conv.external_id or f"sha256:{digest}"
    general = w.encode(conv, external_id, digest)
    assert fast[:2] == (external_id, digest)
    # the same rows, whatever pieces they come in
    assert fast[2]._replace(messages=b"".join(fast[2].messages)) == general._replace(
        messages=b"".join(general.messages)
    )


@pytest.mark.parametrize("keep", [[0, 1, 2, 3], [1, 3], [0], []])
@pytest.mark.parametrize("out_of_band", [False, True])
def test_a_packed_batch_gives_the_kept_conversations_their_ids(keep, out_of_band):
    w = writer()
    rows = [
        native_copy_rows(w, orjson.loads(json.dumps(r)), i)[2] for i, r in enumerate(PLAIN_RECORDS)
    ]
    packed = w.pack(rows)
    if out_of_band:  # as the parsing process sends it: the buffers arrive as bytearrays
        buffers = []
        header = pickle.dumps(packed, protocol=5, buffer_callback=buffers.append)
        packed = pickle.loads(header, buffers=[bytearray(b.raw()) for b in buffers])
        # the bytearrays themselves: the importer writes the ids into them, no copy
        assert isinstance(packed.conversations, bytearray)
        assert isinstance(packed.messages, bytearray)
    ids = [10**12 + 7 * i for i in range(len(keep))]
    got = unpack(packed, keep, ids)
    assert bytes(got.conversations) == b"".join(
        rows[k].conversation.replace(ID, i.to_bytes(8), 1) for k, i in zip(keep, ids, strict=True)
    )
    assert bytes(got.messages) == b"".join(
        b"".join(rows[k].messages).replace(ID, i.to_bytes(8))
        for k, i in zip(keep, ids, strict=True)
    )
    assert ID not in bytes(got.messages)
    if out_of_band and len(keep) == len(rows):  # filled in where they arrived
        assert got.conversations.obj is packed.conversations
        assert got.messages.obj is packed.messages


@pytest.mark.parametrize("record", UNUSUAL_RECORDS)
def test_the_fast_path_leaves_anything_unusual_to_the_general_path(record):
    # (a depth limit of 5 makes the last two records too deep: 6 levels)
    assert native_copy_rows(writer(), orjson.loads(json.dumps(record)), 1, max_depth=5) is None


def test_the_fast_path_takes_metadata_up_to_the_depth_limit():
    record = {"metadata": {"a": [[[]]]}, "messages": [{"role": "assistant", "content": "A"}]}
    assert native_copy_rows(writer(), record, 1, max_depth=5) is not None
    message = {"role": "assistant", "content": "A", "metadata": {"a": []}}
    assert native_copy_rows(writer(), {"messages": [message]}, 1, max_depth=5) is not None


def test_a_role_that_is_not_a_string_is_an_error_not_a_crash(project):
    data = json.dumps({"messages": [{"role": ["user"], "content": "Q"}]}).encode()
    with pytest.raises(ImportFailed) as exc:
        transcript_import(project=project, stream=io.BytesIO(data), source_name="f.jsonl")
    assert "messages[0].role: expected a string, got list" in str(exc.value)


def rows_of(project: Project) -> list[tuple]:
    return [
        (
            c.external_id,
            c.content_hash,
            c.source_line,
            c.occurred_at,
            c.metadata,
            [
                (m.position, m.candidate, m.role, m.content, m.name, m.model, m.source_rank)
                + (m.external_id, m.metadata)
                + tuple((k.article_id, k.url, k.snippet) for k in m.kb_references.all())
                for m in c.messages.order_by("position", "candidate")
            ],
        )
        for c in Conversation.objects.filter(project=project).order_by("source_line")
    ]


@pytest.mark.parametrize("fmt", [None, "native"])
def test_parsing_in_a_child_process_stores_what_parsing_in_process_stores(fmt):
    records = [
        *PLAIN_RECORDS,
        {
            "id": "kb",
            "messages": [{"role": "user", "content": "How?"}],
            "candidates": [
                {
                    "content": "Like this.",
                    "rank": 1,
                    "kb_references": [
                        {"article_id": "KB-1", "url": "https://kb.example.com/1", "snippet": TRICKY}
                    ],
                },
                {"content": "Or so.", "kb_references": [{"article_id": "KB-2"}]},
            ],
        },
    ]
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records) * 3
    results = {}
    for in_worker in (False, True):
        project = Project.objects.create(slug=f"p-{in_worker}", name="p")
        summary = transcript_import(
            project=project,
            stream=io.BytesIO(data),
            source_name="f.jsonl",
            fmt=fmt,
            batch_size=2,
            parse_in_worker=in_worker,
        )
        assert (summary.imported, summary.duplicates) == (5, 10)
        results[in_worker] = rows_of(project)
    assert results[True] == results[False]
    assert Conversation.objects.get(project=project, external_id="t-3").occurred_at == datetime(
        1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC
    )
    stored = Message.objects.filter(conversation__external_id="t-1", position=0).first()
    assert (stored.role, stored.content, stored.name) == ("system", TRICKY, "sys\tname")
    assert KBReference.objects.filter(snippet=TRICKY).count() == 2


def test_an_error_in_the_parsing_process_reaches_the_caller(project, monkeypatch):
    def broken(record):
        raise ZeroDivisionError("a bug in a parser")

    monkeypatch.setitem(formats.PARSERS, "sharegpt", broken)
    data = json.dumps({"conversations": [{"from": "human", "value": "Q"}]}).encode()
    with pytest.raises(ZeroDivisionError, match="a bug in a parser") as exc:
        transcript_import(
            project=project, stream=io.BytesIO(data), source_name="f.jsonl", parse_in_worker=True
        )
    assert any("Traceback" in note for note in exc.value.__notes__)
    assert Conversation.objects.filter(project=project).count() == 0


@pytest.mark.parametrize("fails", [False, True])
def test_foreign_keys_are_deferred_again_after_an_import(project, fails):
    """The COPY writer checks foreign keys at once during the import; the rest of the
    transaction gets Django's deferred checks back."""
    good = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    data = json.dumps(good).encode() + (b"\n{broken\n" if fails else b"\n")
    try:
        transcript_import(project=project, stream=io.BytesIO(data), source_name="f.jsonl")
    except ImportFailed:
        assert fails
    sid = transaction.savepoint()
    with connection.cursor() as cursor:  # a dangling reference passes until the commit
        cursor.execute(
            f"INSERT INTO {Message._meta.db_table} (conversation_id, position, candidate, role, "
            "content, name, model, external_id, metadata) "
            "VALUES (-1, 0, 0, 'user', 'x', '', '', '', '{}')"
        )
    transaction.savepoint_rollback(sid)


def test_a_parsing_process_that_dies_fails_the_import(project, monkeypatch):
    def dies(record):
        os._exit(3)

    monkeypatch.setitem(formats.PARSERS, "sharegpt", dies)
    data = json.dumps({"conversations": [{"from": "human", "value": "Q"}]}).encode()
    with pytest.raises(RuntimeError, match=r"ended unexpectedly \(exit code 3\)"):
        transcript_import(
            project=project, stream=io.BytesIO(data), source_name="f.jsonl", parse_in_worker=True
        )
    assert Conversation.objects.filter(project=project).count() == 0


def test_an_impossible_date_is_an_error_not_a_crash(project):
    record = {
        "occurred_at": "2024-13-01T00:00:00Z",
        "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    }
    with pytest.raises(ImportFailed) as exc:
        transcript_import(
            project=project, stream=io.BytesIO(json.dumps(record).encode()), source_name="f"
        )
    assert "line 1: occurred_at: expected an ISO 8601 date-time, got '2024-13-01" in str(exc.value)


def test_an_import_that_stops_early_stops_its_parsing_process(project):
    record = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    data = b"".join(json.dumps(dict(record, id=f"c{i}")).encode() + b"\n" for i in range(5000))

    def progress(summary):
        raise KeyError("stop")

    with pytest.raises(KeyError, match="stop"):
        transcript_import(
            project=project,
            stream=io.BytesIO(data),
            source_name="f.jsonl",
            progress=progress,
            batch_size=10,
            parse_in_worker=True,
        )
    assert multiprocessing.active_children() == []
    assert Conversation.objects.filter(project=project).count() == 0


def test_every_column_of_a_conversation_is_stored(project, lead):
    job = ImportJob.objects.create(project=project, original_name="f.jsonl")
    record = dict(PLAIN_RECORDS[1], id="all")
    transcript_import(
        project=project,
        stream=io.BytesIO(b"\n" + json.dumps(record).encode()),
        source_name="f.jsonl",
        author_id=lead.pk,
        import_job_id=job.pk,
    )
    conv = Conversation.objects.get(project=project)
    assert (conv.author_id, conv.import_job_id, conv.source_line) == (lead.pk, job.pk, 2)
    assert (conv.source_format, conv.source_name, conv.metadata) == (
        "native",
        "f.jsonl",
        record["metadata"],
    )
    assert conv.occurred_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert conv.created_at is not None
    message = conv.messages.get(position=3)
    assert (message.model, message.metadata) == ("bot-%d-v1", {"latency_ms": 812, "text": "a\nb"})


# --- foreign keys: set-based where the role may, per-row otherwise ---------------------------

KB_RECORD = {
    "id": "kb",
    "messages": [{"role": "user", "content": "How?"}],
    "candidates": [
        {"content": "Like this.", "kb_references": [{"article_id": "KB-1", "snippet": TRICKY}]},
        {"content": "Or so.", "kb_references": [{"article_id": "KB-2"}]},
    ],
}


def replication_role() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        return cursor.fetchone()[0]


def modes_used(monkeypatch) -> list[bool]:
    """Record, for each import from now on, whether its writer checked set-based."""
    used = []
    begin = CopyWriter.begin

    def spy(self):
        begin(self)
        used.append(self.set_based)

    monkeypatch.setattr(CopyWriter, "begin", spy)
    return used


@pytest.mark.postgres  # the COPY writer's set-based foreign-key checks
def test_both_ways_of_checking_foreign_keys_store_the_same_rows(settings, monkeypatch, lead):
    used = modes_used(monkeypatch)
    job = ImportJob.objects.create(project=Project.objects.create(slug="j", name="j"))
    data = b"".join(json.dumps(r).encode() + b"\n" for r in [*PLAIN_RECORDS, KB_RECORD])
    results = {}
    for mode in ("auto", "triggers"):
        settings.IMPORT_FOREIGN_KEYS = mode
        project = Project.objects.create(slug=f"fk-{mode}", name="p")
        summary = transcript_import(
            project=project,
            stream=io.BytesIO(data),
            source_name="f.jsonl",
            batch_size=2,
            author_id=lead.pk,
            import_job_id=job.pk,
        )
        assert summary.imported == 5
        assert replication_role() == "origin"
        results[mode] = rows_of(project)
        assert set(
            Conversation.objects.filter(project=project).values_list("author_id", "import_job_id")
        ) == {(lead.pk, job.pk)}
    # the test database's role is a superuser: "auto" checked set-based
    assert used == [True, False]
    assert results["auto"] == results["triggers"]
    assert KBReference.objects.filter(message__conversation__project__slug="fk-auto").count() == 2


@pytest.mark.postgres  # the COPY writer's set-based foreign-key checks
def test_a_failed_import_leaves_the_per_row_checks_on(project, monkeypatch):
    used = modes_used(monkeypatch)
    good = json.dumps({"messages": [{"role": "assistant", "content": "A"}]}).encode()
    with pytest.raises(ImportFailed):
        transcript_import(
            project=project,
            stream=io.BytesIO(good + b"\n" + good.replace(b"A", b"B") + b"\n{broken\n"),
            source_name="f.jsonl",
            batch_size=1,
        )
    assert used == [True]
    assert replication_role() == "origin"
    sid = transaction.savepoint()
    with pytest.raises(IntegrityError), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            f"INSERT INTO {Message._meta.db_table} (conversation_id, position, candidate, role, "
            "content, name, model, external_id, metadata) "
            "VALUES (-1, 0, 0, 'user', 'x', '', '', '', '{}')"
        )
    transaction.savepoint_rollback(sid)


@pytest.mark.postgres  # the COPY writer's set-based foreign-key checks
def test_an_error_in_the_middle_of_a_write_leaves_the_per_row_checks_on(project, monkeypatch):
    """The rollback of the import's savepoint restores the setting its write had changed."""
    used = modes_used(monkeypatch)
    copy = CopyWriter._copy

    def fails_on_messages(cursor, model, columns, data):
        if model is Message:
            cursor.execute("SHOW session_replication_role")  # the import's own connection
            assert cursor.fetchone()[0] == "replica"
            raise RuntimeError("the disk is full")
        return copy(cursor, model, columns, data)

    monkeypatch.setattr(CopyWriter, "_copy", staticmethod(fails_on_messages))
    data = json.dumps({"messages": [{"role": "assistant", "content": "A"}]}).encode()
    with pytest.raises(RuntimeError, match="the disk is full"):
        transcript_import(project=project, stream=io.BytesIO(data), source_name="f.jsonl")
    assert used == [True]
    assert replication_role() == "origin"
    assert Conversation.objects.filter(project=project).count() == 0


@pytest.mark.postgres  # the COPY writer's set-based foreign-key checks
@pytest.mark.parametrize("mode", ["auto", "triggers"])
def test_a_missing_import_job_is_refused_either_way(project, settings, mode):
    settings.IMPORT_FOREIGN_KEYS = mode
    data = json.dumps({"messages": [{"role": "assistant", "content": "A"}]}).encode()
    # per-row: PostgreSQL's error, through the writer's own psycopg connection
    with pytest.raises((IntegrityError, psycopg.IntegrityError)):
        transcript_import(
            project=project, stream=io.BytesIO(data), source_name="f.jsonl", import_job_id=10**9
        )
    assert Conversation.objects.filter(project=project).count() == 0


@pytest.mark.postgres  # the COPY writer's set-based foreign-key checks
def test_a_role_that_may_not_set_the_replication_role_gets_per_row_checks(db):
    with connection.cursor() as cursor:
        assert set_based_checks_possible(cursor)
        sid = transaction.savepoint()
        cursor.execute("CREATE ROLE rateloop_test_plain_role NOLOGIN")
        cursor.execute("SET LOCAL ROLE rateloop_test_plain_role")
        try:
            assert not set_based_checks_possible(cursor)
        finally:
            transaction.savepoint_rollback(sid)


@pytest.mark.postgres  # the COPY writer's set-based foreign-key checks
def test_a_table_with_a_trigger_of_its_own_gets_per_row_checks(db):
    with connection.cursor() as cursor:
        sid = transaction.savepoint()
        cursor.execute(
            "CREATE FUNCTION rateloop_test_noop() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NEW; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER rateloop_test_trigger BEFORE INSERT ON {Message._meta.db_table} "
            "FOR EACH ROW EXECUTE FUNCTION rateloop_test_noop()"
        )
        try:
            assert not set_based_checks_possible(cursor)
        finally:
            transaction.savepoint_rollback(sid)


@pytest.mark.postgres  # the COPY writer's set-based foreign-key checks
def test_a_new_foreign_key_on_the_tables_gets_per_row_checks(db):
    with connection.cursor() as cursor:
        sid = transaction.savepoint()
        cursor.execute(
            f"ALTER TABLE {KBReference._meta.db_table} ADD COLUMN rateloop_test_ref bigint "
            f"REFERENCES {Project._meta.db_table} (id)"
        )
        try:
            assert not set_based_checks_possible(cursor)
        finally:
            transaction.savepoint_rollback(sid)


@pytest.mark.postgres  # the COPY writer's set-based foreign-key checks
@pytest.mark.django_db(transaction=True)
def test_the_project_cannot_be_deleted_while_an_import_writes_into_it(settings):
    """Set-based checks lock the rows the conversations refer to, as per-row checks do."""
    project = Project.objects.create(slug="locked", name="p")
    with transaction.atomic():
        w = CopyWriter(
            project_id=project.pk,
            source_format="native",
            source_name="f.jsonl",
            import_job_id=None,
            author_id=None,
            now=datetime(2024, 1, 1, tzinfo=UTC),
        )
        w.begin()
        assert w.set_based
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SET lock_timeout = '300ms'")
                with pytest.raises(OperationalError, match="lock timeout"):
                    cursor.execute(
                        f"DELETE FROM {Project._meta.db_table} WHERE id = %s", [project.pk]
                    )
        finally:
            other.close()


def _report_can_fork(out) -> None:
    from conversations.accel.fork import can_fork

    out.send(can_fork())


@pytest.mark.parametrize("daemon", [False, True])
def test_a_daemonic_process_parses_in_process_instead_of_forking(daemon):
    """A child of Celery's prefork pool is daemonic and may not have children (the real
    worker's import is in test_worker.py); the command line keeps its parsing process."""
    from conversations.accel.fork import can_fork

    assert can_fork()
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_report_can_fork, args=(writer,), daemon=daemon)
    child.start()
    assert reader.recv() is (not daemon)
    child.join()
