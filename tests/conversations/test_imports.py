"""Transcript import: every format, every kind of bad input, idempotency, all-or-nothing."""

import gzip
import io
import json
from pathlib import Path

import pytest

from conversations.importers.formats import hh_join
from conversations.models import Conversation, KBReference, Message
from conversations.services.imports import ImportFailed, transcript_import

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("accel_mode")]
DATA = Path(__file__).resolve().parents[2] / "demo" / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "rlhf"
HH_FILE = Path(__file__).resolve().parent / "data" / "hh_rlhf_harmless_base_test.jsonl.gz"


def jsonl(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def run(project, data: bytes, name="file.jsonl", **kwargs):
    return transcript_import(project=project, stream=io.BytesIO(data), source_name=name, **kwargs)


def failure(project, data: bytes, name="file.jsonl", **kwargs) -> str:
    with pytest.raises(ImportFailed) as exc:
        run(project, data, name, **kwargs)
    assert Conversation.objects.filter(project=project).count() == 0
    return str(exc.value)


NATIVE = {
    "id": "c1",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How do I reset my password?"},
    ],
    "candidates": [
        {
            "id": "r1",
            "content": "Use the reset link.",
            "model": "bot-v1",
            "kb_references": [
                {
                    "article_id": "KB-12",
                    "title": "Password reset",
                    "url": "https://kb.example.com/12",
                    "version": "3",
                    "snippet": "Click 'Forgot password'.",
                }
            ],
        },
        {"id": "r2", "content": "Call support.", "model": "bot-v2"},
    ],
    "metadata": {"channel": "web"},
    "occurred_at": "2024-05-01T12:00:00Z",
}


def test_native_jsonl_with_candidates_and_kb_references(project):
    summary = run(project, jsonl(NATIVE))
    assert (summary.format, summary.imported) == ("native", 1)
    conv = Conversation.objects.get(project=project)
    assert conv.external_id == "c1" and conv.metadata == {"channel": "web"}
    assert conv.source_name == "file.jsonl" and conv.source_line == 1
    rows = list(conv.messages.values_list("position", "candidate", "role", "model"))
    assert rows == [
        (0, 0, "system", ""),
        (1, 0, "user", ""),
        (2, 0, "assistant", "bot-v1"),
        (2, 1, "assistant", "bot-v2"),
    ]
    ref = KBReference.objects.get()
    assert (ref.message.external_id, ref.article_id, ref.version) == ("r1", "KB-12", "3")
    first = conv.messages.get(candidate=1)
    assert [m.content for m in Message.objects.context_of(first)] == [
        "Be brief.",
        "How do I reset my password?",
    ]


def test_openai_chat_messages_detected_and_content_parts_joined(project):
    record = {
        "messages": [
            {"role": "developer", "content": "Be kind."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Hello!"},
        ]
    }
    summary = run(project, jsonl(record))
    assert summary.format == "openai"
    conv = Conversation.objects.get()
    assert conv.external_id.startswith("sha256:")
    assert list(conv.messages.values_list("role", "content")) == [
        ("system", "Be kind."),
        ("user", "Hi"),
        ("assistant", "Hello!"),
    ]


def test_sharegpt(project):
    record = {
        "id": "sg-1",
        "conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}],
    }
    summary = run(project, jsonl(record))
    assert summary.format == "sharegpt"
    assert list(Message.objects.values_list("role", "content")) == [
        ("user", "2+2?"),
        ("assistant", "4"),
    ]


def test_csv_with_embedded_newlines_quotes_and_candidates(project):
    data = (
        b"conversation_id,turn_index,role,content,candidate,model\n"
        b'a,0,user,"Say ""hi""\non two lines",,\n'
        b'a,1,assistant,"Hi, ""there""",0,m1\n'
        b"a,1,assistant,Hello,1,m2\n"
        b"b,0,user,Q,,\n"
        b"b,1,assistant,A,,\n"
    )
    summary = run(project, data, "turns.csv")
    assert (summary.format, summary.imported) == ("csv", 2)
    a = Conversation.objects.get(external_id="a")
    assert a.source_line == 2
    assert list(a.messages.values_list("candidate", "content", "model")) == [
        (0, 'Say "hi"\non two lines', ""),
        (0, 'Hi, "there"', "m1"),
        (1, "Hello", "m2"),
    ]


def test_csv_errors_name_the_row(project):
    data = b"conversation_id,turn_index,role,content\na,0,user,Q\na,x,assistant,A\n"
    assert "turns.csv, row 3: turn_index: expected an integer, got 'x'" in failure(
        project, data, "turns.csv"
    )
    data = b"conversation_id,turn_index,role,content\na,0,user,Q\na,1,assistant,A\nb,0,user,Q\nb,1,assistant,A\na,2,user,again\n"
    assert "appears again after other conversations" in failure(project, data, "turns.csv")
    assert "missing column(s) content" in failure(
        project, b"conversation_id,turn_index,role\n", "turns.csv"
    )


def test_oasst_trees_become_conversations_with_ranked_candidates(project):
    summary = run(project, (DATA / "oasst_en_100_tree.jsonl").read_bytes(), "oasst.jsonl")
    assert summary.format == "oasst"
    assert (summary.records_read, summary.imported) == (100, summary.conversations_read)
    ranked = Message.objects.filter(conversation__project=project, source_rank__isnull=False)
    # 212 sibling groups carry ranks in this file; each becomes one conversation's candidates.
    assert ranked.values("conversation").distinct().count() == 212
    first = json.loads((DATA / "oasst_en_100_tree.jsonl").open().readline())
    root = first["prompt"]
    conv = Conversation.objects.get(project=project, external_id=root["message_id"])
    candidates = conv.messages.filter(position=1).order_by("candidate")
    expected = sorted(
        (r for r in root["replies"] if not r["deleted"]), key=lambda r: r.get("rank", 99)
    )
    assert [c.external_id for c in candidates] == [r["message_id"] for r in expected]
    assert [c.source_rank for c in candidates] == [r.get("rank") for r in expected]


def test_hh_rlhf_real_file_keeps_preference_and_text_byte_for_byte(project):
    raw = HH_FILE.read_bytes()
    summary = run(project, raw, HH_FILE.name)
    assert (summary.format, summary.imported, summary.rejected) == ("hh-rlhf", 2312, 0)
    lines = gzip.decompress(raw).splitlines()
    convs = Conversation.objects.filter(project=project).order_by("source_line")
    messages = {}
    for m in Message.objects.filter(conversation__project=project).order_by(
        "position", "candidate"
    ):
        messages.setdefault(m.conversation_id, []).append(m)
    for conv, line in zip(convs, lines, strict=True):
        msgs = messages[conv.pk]
        context = [
            ("Human" if m.role == "user" else "Assistant", m.content)
            for m in msgs
            if m.candidate == 0 and m.position < msgs[-1].position
        ]
        by_rank = {m.source_rank: m for m in msgs if m.position == msgs[-1].position}
        rebuilt = {
            "chosen": hh_join([*context, ("Assistant", by_rank[0].content)]),
            "rejected": hh_join([*context, ("Assistant", by_rank[1].content)]),
        }
        assert json.dumps(rebuilt, ensure_ascii=False).encode() == line


def test_format_override_and_undetectable_input(project):
    record = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    assert "cannot detect the format" in failure(project, jsonl({"foo": 1}))
    assert run(project, jsonl(record), fmt="native").format == "native"


def test_gzip_is_detected_by_content(project):
    record = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    summary = run(project, gzip.compress(jsonl(record)), "upload.bin")
    assert summary.imported == 1


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"messages": [', "file.jsonl, line 2: malformed JSON"),
        (
            json.dumps({"messages": [{"role": "user", "content": 5}]}).encode(),
            "line 2: messages[0].content: expected a string, got int",
        ),
        (
            json.dumps(
                {
                    "messages": [
                        {"role": "wizard", "content": "x"},
                        {"role": "assistant", "content": "y"},
                    ]
                }
            ).encode(),
            "line 2: messages[0].role: unknown role 'wizard'; expected one of assistant, system, tool, user",
        ),
        (
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "  "},
                        {"role": "assistant", "content": "y"},
                    ]
                }
            ).encode(),
            "line 2: messages[0].content: must not be empty",
        ),
        (
            json.dumps({"messages": [{"role": "user", "content": "only a question"}]}).encode(),
            "line 2: messages: the conversation has no assistant turn to rate",
        ),
        (
            b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',
            "line 2: not valid UTF-8 (byte 0xe9 at offset 46)",
        ),
        (
            json.dumps({"id": "x", "messages": "hello"}).encode(),
            "line 2: messages: expected a list, got str",
        ),
    ],
)
def test_bad_record_names_file_line_field_and_imports_nothing(project, line, expected):
    good = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    message = failure(project, jsonl(good) + line + b"\n", fmt="openai")
    assert expected in message
    assert "nothing imported" in message


def test_empty_file_is_an_error(project):
    assert "the file holds no record" in failure(project, b"")
    assert "the file holds no record" in failure(project, b"\n\n")


def test_skip_invalid_imports_valid_records_and_writes_rejects(project):
    good = {
        "id": "g",
        "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    }
    rejects = io.BytesIO()
    summary = run(
        project,
        jsonl(good) + b"not json\n" + jsonl({"id": "h", "messages": []}),
        skip_invalid=True,
        rejects=rejects,
    )
    assert (summary.imported, summary.rejected, summary.records_read) == (1, 2, 3)
    rows = [json.loads(x) for x in rejects.getvalue().splitlines()]
    assert [(r["line"], r["record"]) for r in rows] == [
        (2, "not json"),
        (3, '{"id": "h", "messages": []}'),
    ]
    assert rows[1]["field"] == "messages" and rows[1]["error"] == "must not be empty"


def test_reimport_is_idempotent_and_conflicts_are_not_overwritten(project):
    data = jsonl(NATIVE)
    run(project, data)
    again = run(project, data)
    assert (again.imported, again.duplicates) == (0, 1)
    assert Conversation.objects.count() == 1 and Message.objects.count() == 4
    changed = dict(NATIVE, messages=[{"role": "user", "content": "Something else"}])
    with pytest.raises(ImportFailed) as exc:
        run(project, jsonl(changed))
    assert "conversation 'c1' already exists with different content" in str(exc.value)
    assert Message.objects.get(role="user").content == "How do I reset my password?"


def test_duplicates_and_conflicts_within_one_file(project):
    record = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    summary = run(project, jsonl(record, record))
    assert (summary.imported, summary.duplicates) == (1, 1)
    a = {
        "id": "same",
        "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    }
    b = {
        "id": "same",
        "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}],
    }
    assert "already exists with different content" in failure(
        project.__class__.objects.create(slug="p2", name="p2"), jsonl(a, b)
    )


def test_a_50_mb_single_line_imports_and_an_over_limit_line_is_refused(project, settings):
    big = "x" * (50 * 1024 * 1024)
    record = {
        "id": "big",
        "messages": [{"role": "user", "content": "Long?"}, {"role": "assistant", "content": big}],
    }
    summary = run(project, jsonl(record))
    assert summary.imported == 1
    assert len(Message.objects.get(role="assistant").content) == len(big)
    settings.IMPORT_MAX_RECORD_BYTES = 1024 * 1024
    record["id"] = "too-big"
    assert "line 1: line is longer than the 1,048,576-byte limit" in failure(
        project.__class__.objects.create(slug="p3", name="p3"), jsonl(record)
    )


def test_batches_larger_than_one_are_all_or_nothing(project):
    records = [
        {
            "id": f"c{i}",
            "messages": [
                {"role": "user", "content": "Q"},
                {"role": "assistant", "content": f"A{i}"},
            ],
        }
        for i in range(25)
    ]
    data = jsonl(*records) + b"{broken\n"
    with pytest.raises(ImportFailed):
        run(project, data, batch_size=5)
    assert Conversation.objects.count() == 0
    assert run(project, jsonl(*records), batch_size=5).imported == 25


def test_kb_reference_urls_must_be_web_addresses(project):
    record = dict(NATIVE, id="js")
    record["candidates"] = [
        dict(
            NATIVE["candidates"][0],
            kb_references=[{"article_id": "KB-1", "url": "javascript:alert(1)"}],
        )
    ]
    message = failure(project, jsonl(record))
    assert "candidates[0].kb_references[0].url: expected an http:// or https:// address" in message
