"""Reading pairs' text out of PostgreSQL for the export caches (cache.py): the SQL that
renders a pair's prompt as the exporters do, the check that the server's JSON encoding of
text is the writer's, and the reading spread over one connection per CPU in one snapshot."""

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import orjson
import psycopg
import pyarrow as pa
from django.db import connection

from conversations.models import Message, MessageRole
from ratings.models import Item


def prompt_sql() -> str:
    """``prompt_text()`` (exports/exporters.py) in SQL, for the item ``i`` and its response
    ``a``, with ``p`` the conversation's first main-line message: the user message alone, or
    role-labelled turns joined by blank lines ("" when there is none)."""
    labels = " ".join(f"WHEN '{role}' THEN '{role.capitalize()}'" for role in MessageRole.values)
    messages = Message._meta.db_table
    return f"""
        CASE WHEN a.position = 1 AND p.role = 'user' THEN p.content ELSE (
            SELECT CASE WHEN count(*) = 1 AND bool_and(m.role = 'user')
                        THEN string_agg(m.content, '')
                        ELSE coalesce(string_agg((CASE m.role {labels} END) || ': ' || m.content,
                                                 E'\\n\\n' ORDER BY m.position), '') END
            FROM {messages} m
            WHERE m.conversation_id = i.conversation_id AND m.candidate = 0
              AND m.position < a.position
        ) END"""


def text_sql(where: str, *, mode: str) -> str:
    """The id, creation time, prompt text and both responses of the pairs ``where`` selects
    (on ``i``), in id order; the three texts as ``mode`` says: "json", JSON strings, or
    "utf8", the texts themselves, both as UTF-8 bytes; "text", as text."""
    messages = Message._meta.db_table

    def text(sql: str) -> str:
        if mode == "json":
            return f"convert_to(to_json({sql})::text, 'UTF8')"
        return f"convert_to({sql}, 'UTF8')" if mode == "utf8" else sql

    return f"""
        SELECT i.id, (date_part('epoch', i.created_at) * 1000000)::int8,
               {text(prompt_sql())}, {text("a.content")}, {text("b.content")}
        FROM {Item._meta.db_table} i
        JOIN {messages} a ON a.id = i.response_id
        JOIN {messages} b ON b.id = i.response_b_id
        LEFT JOIN {messages} p
          ON p.conversation_id = i.conversation_id AND p.position = 0 AND p.candidate = 0
        WHERE {where}
        ORDER BY i.id"""


# every character class JSON encoders may treat differently: control characters, quotes,
# backslash, slash, DEL, non-ASCII of every width, line separators, a lone combining mark
PROBE = "".join(chr(c) for c in range(1, 32)) + (
    "\x7f\"\\/<>&'é漢字😀\u2028\u2029\u0301\ufeff\U0010fffd"
)
_server_encodes_like_orjson: dict[str, bool] = {}


def server_encodes_like_orjson() -> bool:
    """Whether this server's ``to_json`` of text gives exactly orjson's bytes for PROBE
    (PostgreSQL 15 does): then the server encodes while the cache is built."""
    key = connection.settings_dict.get("NAME") or ""
    if key not in _server_encodes_like_orjson:
        with connection.cursor() as cursor:
            cursor.execute("SELECT convert_to(to_json(%s::text)::text, 'UTF8')", [PROBE])
            encoded = bytes(cursor.fetchone()[0])
        _server_encodes_like_orjson[key] = encoded == orjson.dumps(PROBE)
    return _server_encodes_like_orjson[key]


@contextmanager
def nested_loops() -> Iterator[None]:
    """Within the enclosing transaction, plan joins as index look-ups, row by row in the
    outer order: without this PostgreSQL sorts the pairs' text to merge-join it, then sorts
    it again by id (twice as slow here, on two CPUs). The settings are restored after."""
    names = ("enable_hashjoin", "enable_mergejoin")
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"current_setting('{n}')" for n in names))
        before = cursor.fetchone()
        for name in names:
            cursor.execute("SELECT set_config(%s, 'off', true)", [name])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for name, value in zip(names, before, strict=True):
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def in_parallel(fetch, bounds: list[tuple], snapshot: str):
    """``fetch(cursor, *args)`` for every ``args`` in ``bounds``, in order, spread over one
    connection per CPU (all in ``snapshot``), each at most one result ahead of the caller."""
    params = connection.connection.info.get_parameters()
    password = connection.connection.info.password
    workers = max(2, min(4, os.cpu_count() or 2))
    queues = [queue.Queue(maxsize=1) for _ in range(workers)]
    stop = threading.Event()

    def put(q: queue.Queue, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work(w: int) -> None:
        try:
            with psycopg.connect(**params, password=password) as conn:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                for setting in (
                    "max_parallel_workers_per_gather = 0",
                    "jit = off",
                    "enable_hashjoin = off",
                    "enable_mergejoin = off",
                ):
                    conn.execute(f"SET LOCAL {setting}")
                with conn.cursor() as cursor:
                    for args in bounds[w::workers]:
                        if not put(queues[w], fetch(cursor, *args)):
                            return
        except BaseException as exc:  # handed to the caller, which raises it
            put(queues[w], _Failed(exc))

    threads = [
        threading.Thread(target=work, args=(w,), name=f"export-encode-{w}", daemon=True)
        for w in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        for k in range(len(bounds)):
            item = queues[k % workers].get()
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def unpack_batch(schema, ids, stamps, prompts, prompt_sizes, responses, a_sizes, b_sizes):
    """One batch (of ``schema``) from the packed query's row, in id order."""
    ids = np.array(ids or [], dtype=np.int64)
    n = len(ids)
    offsets = np.zeros(2 * n + 1, dtype=np.int32)  # the prompts, then n empty values
    np.cumsum(prompt_sizes or [], out=offsets[1 : n + 1])
    offsets[n + 1 :] = offsets[n]
    kind = schema.field(0).type
    prompt = pa.Array.from_buffers(
        kind, 2 * n, [None, pa.py_buffer(offsets), pa.py_buffer(prompts or b"")]
    )
    sizes = np.column_stack([np.array(a_sizes or []), np.array(b_sizes or [])]).ravel()
    offsets = np.zeros(2 * n + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    response = pa.Array.from_buffers(
        kind, 2 * n, [None, pa.py_buffer(offsets), pa.py_buffer(responses or b"")]
    )
    stamps = np.array(stamps or [], dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    if (order != np.arange(n)).any():  # aggregated in another order: put it in id order
        pad = np.arange(n, 2 * n)
        prompt = prompt.take(np.concatenate([order, pad]))
        response = response.take(np.column_stack([2 * order, 2 * order + 1]).ravel())
        ids, stamps = ids[order], stamps[order]
    return ids, stamps, pa.record_batch([prompt, response], schema=schema)


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc
