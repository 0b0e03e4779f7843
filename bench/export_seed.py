"""Seed the export benchmark's projects straight into PostgreSQL with COPY.

Two pairwise projects, ``export-bench-1x`` with N pairs and ``export-bench-2x`` with 2N, share
one pool of raters (users with an evaluator membership in both) and one lead. Each pair is a
conversation with a user message (50-300 characters) and two assistant candidates at the same
position (200-1,500 characters each, models "model-a" and "model-b"); its item has
``response`` = candidate 0 (the lower id) and ``response_b`` = candidate 1, and three current
judgments by distinct raters. The text is drawn from a word list with punctuation, paragraph
breaks, quotes and a few non-ASCII words, so JSON encoding has escaping to do.

Votes: each pair has a latent quality difference d ~ N(0, 1) (negative: A is better); a rater
sees x = d + N(0, 0.9) and answers 0 (tie) when |x| < 0.2, +-1 when |x| < 1.2, else +-2: about
12% of votes are ties and 14% of pairs have no majority. About 4% of pairs are bad pairs
(each rater then says "both bad" with probability 0.8; elsewhere 0.02). The same seed gives
the same rows; ids are assigned here and the identity sequences are moved past them at the
end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import psycopg
from seeding import distinct_raters, timestamps

START = datetime(2026, 10, 1, tzinfo=UTC)
LEAD_ID = 1
LEAD_NAME = "export-lead"
VOCABULARY = (
    "the order was shipped on monday and should arrive within three business days please check "
    "your tracking number in the account page if parcel does not contact support we can refund "
    "amount or send a replacement our policy allows returns for thirty after delivery warranty "
    "covers defects but not accidental damage you update address before ships invoice is "
    'attached to email café naïve déjà-vu €25 — “quoted” "so-called" it\'s step 1: 2: 3:'
)


@dataclass(frozen=True)
class Scenario:
    pairs: int = 165_000  # of the 1x project; the 2x project has twice as many
    per_item: int = 3
    raters: int = 300
    seed: int = 1

    def projects(self) -> list[tuple[int, str, int]]:
        """(project id, slug, pairs) of each scale."""
        return [(1, "export-bench-1x", self.pairs), (2, "export-bench-2x", 2 * self.pairs)]

    def describe(self) -> str:
        sizes = ", ".join(f"{slug} {n:,} pairs" for _, slug, n in self.projects())
        return (
            f"{sizes}; {self.per_item} judgments a pair from a pool of {self.raters} raters; "
            "user message 50-300 characters, two candidates 200-1,500 characters each"
        )


def _copy(
    conn: psycopg.Connection, table: str, columns: Iterable[str], lines: Iterable[str]
) -> int:
    started = time.perf_counter()
    count = 0
    buffer: list[str] = []
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for line in lines:
            buffer.append(line)
            if len(buffer) == 20_000:
                copy.write("".join(buffer))
                count += len(buffer)
                buffer = []
        copy.write("".join(buffer))
        count += len(buffer)
    print(
        f"  COPY {table}: {count:,} rows in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    return count


def _corpus(rng: np.random.Generator, chars: int) -> str:
    """Running text of about ``chars`` characters, already escaped for COPY text format."""
    words = np.array(VOCABULARY.split())
    text = " ".join(words[rng.integers(0, len(words), chars // 5)].tolist())
    # sentence ends and paragraph breaks, then COPY's escape of the newline
    text = text.replace(" the ", ". The ").replace(" please ", ".\n\nPlease ")
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def _slice(text: str, start: int, length: int) -> str:
    piece = text[start : start + length]
    return piece[:-1] if piece.endswith("\\") else piece  # never cut an escape in two


def _users(s: Scenario, now: str) -> Iterator[str]:
    yield f"{LEAD_ID}\t!\tf\t{LEAD_NAME}\t\t\t\tf\tt\t{now}\n"
    for i in range(s.raters):
        yield f"{LEAD_ID + 1 + i}\t!\tf\trater-{i:04d}\t\t\t\tf\tt\t{now}\n"


def _seed_project(
    conn: psycopg.Connection,
    s: Scenario,
    rng: np.random.Generator,
    corpus: str,
    project: tuple[int, str, int],
    first: dict[str, int],
) -> dict[str, int]:
    """One project's conversations, messages, items and judgments; ids start after ``first``."""
    pid, slug, n = project
    now = datetime.now(tz=UTC).isoformat()
    conn.execute(
        "INSERT INTO conversations_project (id, slug, name, description, guidelines,"
        " guidelines_version, overlap, gold_rate, lease_seconds, has_scoring, has_pairwise,"
        " has_kb_verification, allow_edits, pause_flagged_raters, show_rater_identities,"
        " created_at, updated_at, created_by_id) VALUES (%s, %s, %s, '', '', 1, %s, 0, 1800,"
        " false, true, false, true, false, false, %s, %s, %s)",
        (pid, slug, f"Export benchmark ({n:,} pairs)", s.per_item, now, now, LEAD_ID),
    )
    _copy(
        conn,
        "conversations_membership",
        ("project_id", "user_id", "role", "created_at"),
        [f"{pid}\t{LEAD_ID}\tlead\t{now}\n"]
        + [f"{pid}\t{LEAD_ID + 1 + i}\tevaluator\t{now}\n" for i in range(s.raters)],
    )
    c0, m0, i0, j0 = first["conversation"], first["message"], first["item"], first["judgment"]
    created = START.isoformat()
    _copy(
        conn,
        "conversations_conversation",
        (
            "id",
            "project_id",
            "external_id",
            "content_hash",
            "source_format",
            "source_name",
            "metadata",
            "created_at",
        ),
        (
            f"{c0 + k}\t{pid}\tpair-{k:07d}\t{c0 + k:064x}\tnative\tbench\t{{}}\t{created}\n"
            for k in range(1, n + 1)
        ),
    )
    span = len(corpus) - 1600
    prompt_len = rng.integers(50, 301, n).tolist()
    a_len = rng.integers(200, 1501, n).tolist()
    b_len = rng.integers(200, 1501, n).tolist()
    offsets = rng.integers(0, span, (n, 3)).tolist()

    def messages() -> Iterator[str]:
        # conversation k: message 3k-2 is the prompt, 3k-1 candidate 0, 3k candidate 1
        for k in range(1, n + 1):
            conv, base = c0 + k, m0 + 3 * k
            off = offsets[k - 1]
            prompt = _slice(corpus, off[0], prompt_len[k - 1])
            a = _slice(corpus, off[1], a_len[k - 1])
            b = _slice(corpus, off[2], b_len[k - 1])
            yield f"{base - 2}\t{conv}\t0\t0\tuser\t{prompt}\t\t\t\t{{}}\n"
            yield f"{base - 1}\t{conv}\t1\t0\tassistant\t{a}\t\tmodel-a\t\t{{}}\n"
            yield f"{base}\t{conv}\t1\t1\tassistant\t{b}\t\tmodel-b\t\t{{}}\n"

    _copy(
        conn,
        "conversations_message",
        (
            "id",
            "conversation_id",
            "position",
            "candidate",
            "role",
            "content",
            "name",
            "model",
            "external_id",
            "metadata",
        ),
        messages(),
    )
    k = s.per_item
    _copy(
        conn,
        "ratings_item",
        (
            "id",
            "project_id",
            "kind",
            "conversation_id",
            "response_id",
            "response_b_id",
            "overlap",
            "n_active",
            "n_done",
            "priority",
            "is_gold",
            "is_retired",
            "origin",
            "created_at",
        ),
        (
            f"{i0 + q}\t{pid}\tpairwise\t{c0 + q}\t{m0 + 3 * q - 1}\t{m0 + 3 * q}"
            f"\t{k}\t{k}\t{k}\t0\tf\tf\trule\t{created}\n"
            for q in range(1, n + 1)
        ),
    )
    # Votes: latent difference per pair, per-vote noise; bad pairs mostly marked both bad.
    x = np.repeat(rng.normal(0.0, 1.0, n), k) + rng.normal(0.0, 0.9, n * k)
    strength = np.where(np.abs(x) < 0.2, 0, np.where(np.abs(x) < 1.2, 1, 2))
    preference = (np.sign(x) * strength).astype(int)
    bad_pair = np.repeat(rng.random(n) < 0.04, k)
    both_bad = rng.random(n * k) < np.where(bad_pair, 0.8, 0.02)
    left_is_a = rng.random(n * k) < 0.5
    who = distinct_raters(rng, n, k, s.raters).ravel() + LEAD_ID + 1
    seconds = np.sort(rng.uniform(0.0, 30 * 86_400.0, n * k)) + START.timestamp()
    on_task = rng.integers(5_000, 120_000, n * k).tolist()
    stamps = timestamps(seconds)
    flag = {True: "t", False: "f"}
    _copy(
        conn,
        "ratings_judgment",
        (
            "id",
            "item_id",
            "rater_id",
            "version",
            "is_current",
            "guidelines_version",
            "preference",
            "both_bad",
            "left_is_a",
            "verdict",
            "corrected_answer",
            "missing_fact",
            "kb_issues",
            "rationale",
            "time_on_task_ms",
            "is_external",
            "source",
            "external_id",
            "created_at",
        ),
        (
            f"{j0 + v + 1}\t{i0 + 1 + v // k}\t{r}\t1\tt\t1\t{p}\t{flag[bb]}\t{flag[left]}"
            f"\t\t\t\t[]\t\t{ms}\tf\t\t\t{ts}\n"
            for v, (r, p, bb, left, ms, ts) in enumerate(
                zip(
                    who.tolist(),
                    preference.tolist(),
                    both_bad.tolist(),
                    left_is_a.tolist(),
                    on_task,
                    stamps,
                    strict=True,
                )
            )
        ),
    )
    return {"conversation": c0 + n, "message": m0 + 3 * n, "item": i0 + n, "judgment": j0 + n * k}


def seed(database_url: str, s: Scenario) -> dict[str, int]:
    """Write the users and both projects; return the last id of each table."""
    rng = np.random.default_rng(s.seed)
    corpus = _corpus(rng, 4_000_000)
    now = datetime.now(tz=UTC).isoformat()
    last = {"conversation": 0, "message": 0, "item": 0, "judgment": 0}
    with psycopg.connect(database_url) as conn:
        # The rows are consistent by construction: skip the per-row foreign-key triggers.
        conn.execute("SET session_replication_role = replica")
        _copy(
            conn,
            "auth_user",
            (
                "id",
                "password",
                "is_superuser",
                "username",
                "first_name",
                "last_name",
                "email",
                "is_staff",
                "is_active",
                "date_joined",
            ),
            _users(s, now),
        )
        for project in s.projects():
            last = _seed_project(conn, s, rng, corpus, project, last)
        for table, key in (
            ("auth_user", LEAD_ID + s.raters),
            ("conversations_project", len(s.projects())),
            ("conversations_conversation", last["conversation"]),
            ("conversations_message", last["message"]),
            ("ratings_item", last["item"]),
            ("ratings_judgment", last["judgment"]),
        ):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {key})")
    return last
