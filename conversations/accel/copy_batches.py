"""A batch of conversations' COPY rows as two byte strings, ready to send and to store.

The parsing process (see ``accel.fork``) hands the importer thousands of
conversations a batch. As one ``CopyRows`` each, pickling them there and unpickling them here
cost more CPU than PostgreSQL's COPY of them, and giving each its id meant a ``replace`` and a
copy per conversation. ``pack`` joins the batch's rows into one byte string per table, and
notes where each row starts and where each conversation-id placeholder (``ID``) sits;
``unpack`` takes the conversations the importer keeps (usually all) and writes their ids
into those places with numpy, in one step per table. The two byte strings are
``pickle.PickleBuffer``s, which the pipeline sends out of band: on the importer's side they
arrive as writable buffers, and the ids are written into them where they are.
"""

import itertools
import pickle
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from conversations.accel.copy_writer import CopyRows

CONVERSATION_ID_AT = 6  # in a conversation's row: after the field count and the id's length
_ID_BYTES = np.arange(8)


class PackedRows(NamedTuple):
    """``CopyRows`` of n conversations. ``conversations`` and ``messages``: their rows joined,
    conversation i's from ``*_starts[i]`` to ``*_starts[i + 1]`` (n + 1 offsets each);
    ``id_at``: the offset in ``messages`` of every placeholder for a conversation's id, and
    ``id_owner`` the conversation it stands for; ``kb_references``: by conversation index,
    for the conversations that have some."""

    conversations: pickle.PickleBuffer | bytearray
    conversation_starts: np.ndarray
    messages: pickle.PickleBuffer | bytearray
    message_starts: np.ndarray
    id_at: np.ndarray
    id_owner: np.ndarray
    kb_references: dict[int, tuple[tuple[int, int, bytes], ...]]

    def __len__(self) -> int:
        return len(self.conversation_starts) - 1


class Unpacked(NamedTuple):
    """The rows of the kept conversations, their ids in place."""

    conversations: memoryview
    messages: memoryview
    kb_references: list[tuple[tuple[tuple[int, int, bytes], ...], int]]  # (references, id)


def _starts(lengths: Sequence[int]) -> np.ndarray:
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return starts


def pack(rows: Sequence["CopyRows"]) -> PackedRows:
    message_starts = _starts([r.messages_size for r in rows])
    counts = [len(r.id_offsets) for r in rows]
    owner = np.repeat(np.arange(len(rows), dtype=np.int64), counts)
    relative = np.fromiter(
        itertools.chain.from_iterable(r.id_offsets for r in rows), np.int64, len(owner)
    )
    return PackedRows(
        pickle.PickleBuffer(bytearray().join([r.conversation for r in rows])),
        _starts([len(r.conversation) for r in rows]),
        pickle.PickleBuffer(
            bytearray().join(itertools.chain.from_iterable(r.messages for r in rows))
        ),
        message_starts,
        relative + message_starts[owner],
        owner,
        {i: r.kb_references for i, r in enumerate(rows) if r.kb_references},
    )


def _select(data, starts: np.ndarray, keep: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The rows of the kept conversations, joined, and their new start offsets."""
    view = memoryview(data)
    kept = b"".join([view[starts[k] : starts[k + 1]] for k in keep.tolist()])
    return kept, _starts(starts[keep + 1] - starts[keep])


def _writable(data) -> memoryview:
    """A writable view of ``data``: of the buffer itself (a bytearray that arrived out of
    band, or the PickleBuffer of one, in the process that packed it), else of a copy."""
    view = memoryview(data)
    return memoryview(bytearray(view)) if view.readonly else view


def unpack(packed: PackedRows, keep: Sequence[int], ids: Sequence[int]) -> Unpacked:
    """The rows of conversations ``keep`` (indexes, ascending), with ids ``ids`` (one each,
    in the same order) in place of their placeholders."""
    keep_ = np.asarray(keep, dtype=np.int64)
    id_bytes = np.asarray(ids, dtype=">i8").view(np.uint8).reshape(-1, 8)
    if len(keep_) == len(packed):
        conversations, conversation_starts = packed.conversations, packed.conversation_starts
        messages, id_at, owner = packed.messages, packed.id_at, packed.id_owner
    else:
        conversations, conversation_starts = _select(
            packed.conversations, packed.conversation_starts, keep_
        )
        messages, message_starts = _select(packed.messages, packed.message_starts, keep_)
        rank = np.full(len(packed), -1, dtype=np.int64)
        rank[keep_] = np.arange(len(keep_))
        kept = rank[packed.id_owner] >= 0
        old_owner = packed.id_owner[kept]
        owner = rank[old_owner]
        id_at = packed.id_at[kept] - packed.message_starts[old_owner] + message_starts[owner]
    conversations = _writable(conversations)
    at = conversation_starts[:-1] + CONVERSATION_ID_AT
    np.frombuffer(conversations, np.uint8)[at[:, None] + _ID_BYTES] = id_bytes
    messages = _writable(messages)
    np.frombuffer(messages, np.uint8)[id_at[:, None] + _ID_BYTES] = id_bytes[owner]
    kb = [
        (packed.kb_references[k], conv_id)
        for k, conv_id in zip(keep_.tolist(), ids, strict=True)
        if k in packed.kb_references
    ]
    return Unpacked(conversations, messages, kb)
