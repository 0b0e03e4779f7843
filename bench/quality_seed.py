"""Seed the quality benchmark's project straight into PostgreSQL with COPY.

One score project: N Likert items (1-5, one criterion), each offered to ``per_item`` distinct
raters drawn from a pool; a share of those item x rater cells has no judgment. Judgment times
are spread uniformly over ``days`` days. Every rater has a fixed character:

- ``steady``: rates the item's latent quality plus a small personal bias and noise;
- ``lenient``: like steady but one point (about) more generous, from the first day to the last;
- ``drop``: steady until ``drop_day``, then much noisier (agreement with the others drops);
- ``random``: steady until ``random_day``, then picks 1-5 uniformly at random, in a few
  seconds (a click-through).

A rater's character is in the user name (``steady-0001``, ``drop-0003``...), so the ground
truth can be read back from the database alone (``--reuse``). Ids are assigned here and the
identity sequences are moved past them at the end. The rows are consistent by construction, so
the foreign-key triggers are skipped (``session_replication_role = replica``) and each table's
plain indexes are rebuilt after its COPY. The same seed gives the same rows.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import psycopg
from seeding import distinct_raters, timestamps

DAY = 86_400.0
START = datetime(2026, 10, 1, tzinfo=UTC)
GROUPS = ("steady", "lenient", "drop", "random")
SLUG = "quality-bench"
LEAD_ID = 1
VOCABULARY = (
    "the order was shipped on monday and should arrive within three business days please "
    "check your tracking number in the account page if the parcel does not arrive contact "
    "support we can refund the amount or send a replacement our policy allows returns for "
    "thirty days after delivery the warranty covers defects but not accidental damage you "
    "can update your address before the order ships the invoice is attached to the email "
)


@dataclass(frozen=True)
class Scenario:
    items: int = 200_000
    per_item: int = 5
    raters: int = 500
    missing: float = 0.10
    days: int = 30
    drop: int = 10
    drop_day: float = 15.0
    random: int = 5
    random_day: float = 20.0
    lenient: int = 5
    seed: int = 1

    def describe(self) -> str:
        cells = self.items * self.per_item
        return (
            f"{self.items:,} items x {self.per_item} raters from a pool of {self.raters} "
            f"({cells:,} cells, {self.missing:.0%} missing), Likert 1-5, {self.days} days; "
            f"raters: {self.drop} whose agreement drops from day {self.drop_day:g}, "
            f"{self.random} who answer at random (and fast) from day {self.random_day:g}, "
            f"{self.lenient} lenient (steady, about +1 point), the rest steady"
        )


def _copy(conn: psycopg.Connection, table: str, columns: Iterable[str], lines: list[str]) -> None:
    """COPY the lines into the table; indexes that back no constraint are dropped first and
    rebuilt after (one sort each instead of a million random insertions)."""
    started = time.perf_counter()
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN"
        " (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        (table, table),
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for start in range(0, len(lines), 50_000):
            copy.write("".join(lines[start : start + 50_000]))
    for _, definition in indexes:
        conn.execute(definition)
    print(
        f"  COPY {table}: {len(lines):,} rows in {time.perf_counter() - started:.1f} s "
        f"({len(indexes)} indexes rebuilt)",
        file=sys.stderr,
        flush=True,
    )


def rater_groups(s: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Group name of each rater of the pool (shuffled, so groups are not runs of ids)."""
    groups = np.array(
        ["drop"] * s.drop
        + ["random"] * s.random
        + ["lenient"] * s.lenient
        + ["steady"] * (s.raters - s.drop - s.random - s.lenient)
    )
    return groups[rng.permutation(s.raters)]


def seed(database_url: str, s: Scenario) -> dict[str, int]:
    """Write the project, users, conversations, items, judgments and scores; return counts."""
    rng = np.random.default_rng(s.seed)
    t0 = START.timestamp()
    now = datetime.now(tz=UTC).isoformat()
    groups = rater_groups(s, rng)
    rater_ids = np.arange(LEAD_ID + 1, LEAD_ID + 1 + s.raters)

    # Items: latent quality, response length; cells: rater, time, missing or not.
    n = s.items
    latent = np.clip(rng.normal(3.0, 1.0, n), 0.6, 5.4)
    chars = rng.integers(200, 1501, n)
    prompt_chars = rng.integers(50, 301, n)
    who = distinct_raters(rng, n, s.per_item, s.raters).ravel()
    item_of = np.repeat(np.arange(n), s.per_item)
    keep = np.ones(who.size, dtype=bool)
    keep[rng.choice(who.size, size=round(s.missing * who.size), replace=False)] = False
    who, item_of = who[keep], item_of[keep]
    m = who.size
    at = rng.uniform(0.0, s.days * DAY, m)
    day = at / DAY

    # Rater characters.
    bias = rng.normal(0.0, 0.15, s.raters)
    noise = rng.uniform(0.4, 0.7, s.raters)
    bias[groups == "lenient"] += 1.1
    g = groups[who]
    sd = noise[who].copy()
    sd[(g == "drop") & (day >= s.drop_day)] = 1.8
    value = np.clip(np.rint(latent[item_of] + bias[who] + rng.normal(0.0, 1.0, m) * sd), 1, 5)
    at_random = (g == "random") & (day >= s.random_day)
    value[at_random] = rng.integers(1, 6, int(at_random.sum()))
    # Time on task: reading time (40-15 characters a second) plus thinking time.
    seconds = chars[item_of] / rng.uniform(15.0, 40.0, m) + rng.gamma(2.0, 6.0, m)
    seconds[at_random] = rng.uniform(2.0, 6.0, int(at_random.sum()))
    order = np.argsort(at, kind="stable")  # ids in submission order, as in production
    who, item_of, at, value, seconds = (a[order] for a in (who, item_of, at, value, seconds))
    per_item = np.bincount(item_of, minlength=n)

    text = (VOCABULARY * (1 + 2 * 1500 // len(VOCABULARY))).strip()
    offsets = rng.integers(0, len(VOCABULARY), n)
    item_ids = np.arange(1, n + 1)
    created = START.isoformat()

    with psycopg.connect(database_url) as conn:
        # The rows are consistent by construction: skip the per-row foreign-key triggers, which
        # would otherwise take most of the seeding time (millions of deferred checks).
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO conversations_project (id, slug, name, description, guidelines,"
            " guidelines_version, overlap, gold_rate, lease_seconds, has_scoring, has_pairwise,"
            " has_kb_verification, allow_edits, pause_flagged_raters, show_rater_identities,"
            " created_at, updated_at, created_by_id) VALUES (1, %s, %s, '', '', 1, %s, 0, 1800,"
            " true, false, false, true, false, false, %s, %s, %s)",
            (SLUG, "Quality benchmark", s.per_item, now, now, None),
        )
        users = [f"{LEAD_ID}\t!\tf\tlead\t\t\t\tf\tt\t{now}\n"] + [
            f"{uid}\t!\tf\t{grp}-{i:04d}\t\t\t\tf\tt\t{now}\n"
            for i, (uid, grp) in enumerate(zip(rater_ids.tolist(), groups.tolist(), strict=True))
        ]
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
            users,
        )
        conn.execute("UPDATE conversations_project SET created_by_id = %s", (LEAD_ID,))
        members = [f"1\t{LEAD_ID}\tlead\t{now}\n"] + [
            f"1\t{uid}\tevaluator\t{now}\n" for uid in rater_ids.tolist()
        ]
        _copy(
            conn,
            "conversations_membership",
            ("project_id", "user_id", "role", "created_at"),
            members,
        )
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
            [
                f"{i}\t1\tbench-{i:07d}\t{i:064x}\tnative\tbench\t{{}}\t{created}\n"
                for i in range(1, n + 1)
            ],
        )
        # Message 2i-1 is conversation i's prompt, message 2i its response (the scored one).
        lines = []
        for i, (off, pc, rc) in enumerate(
            zip(offsets.tolist(), prompt_chars.tolist(), chars.tolist(), strict=True), start=1
        ):
            lines.append(f"{2 * i - 1}\t{i}\t0\t0\tuser\t{text[off : off + pc]}\t\t\t\t{{}}\n")
            lines.append(f"{2 * i}\t{i}\t1\t0\tassistant\t{text[off : off + rc]}\t\t\t\t{{}}\n")
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
            lines,
        )
        del lines
        _copy(
            conn,
            "ratings_item",
            (
                "id",
                "project_id",
                "kind",
                "conversation_id",
                "response_id",
                "overlap",
                "n_active",
                "n_done",
                "priority",
                "is_gold",
                "is_retired",
                "origin",
                "created_at",
            ),
            [
                f"{i}\t1\tscore\t{i}\t{2 * i}\t{s.per_item}\t{c}\t{c}\t0\tf\tf\trule\t{created}\n"
                for i, c in zip(item_ids.tolist(), per_item.tolist(), strict=True)
            ],
        )
        conn.execute(
            "INSERT INTO ratings_rubric (id, project_id, version, is_current, created_at,"
            " created_by_id) VALUES (1, 1, 1, true, %s, %s)",
            (created, LEAD_ID),
        )
        conn.execute(
            "INSERT INTO ratings_criterion (id, rubric_id, key, label, description, scale, points,"
            " anchors, options, required, position, applies_to) VALUES (1, 1, 'quality',"
            " 'Overall quality', '', 'likert', 5, '[]', '[]', true, 0, '[]')"
        )
        judgment_ids = np.arange(1, m + 1)
        stamps = timestamps(t0 + at)
        _copy(
            conn,
            "ratings_judgment",
            (
                "id",
                "item_id",
                "rater_id",
                "version",
                "is_current",
                "rubric_id",
                "guidelines_version",
                "both_bad",
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
            [
                f"{j}\t{it}\t{r}\t1\tt\t1\t1\tf\t\t\t\t[]\t\t{ms}\tf\t\t\t{ts}\n"
                for j, it, r, ms, ts in zip(
                    judgment_ids.tolist(),
                    (item_of + 1).tolist(),
                    rater_ids[who].tolist(),
                    np.rint(seconds * 1000).astype(np.int64).tolist(),
                    stamps,
                    strict=True,
                )
            ],
        )
        del stamps
        _copy(
            conn,
            "ratings_score",
            ("id", "judgment_id", "criterion_id", "value", "choices", "text"),
            [
                f"{j}\t{j}\t1\t{v}\t[]\t\n"
                for j, v in zip(judgment_ids.tolist(), value.astype(int).tolist(), strict=True)
            ],
        )
        for table, last in (
            ("auth_user", LEAD_ID + s.raters),
            ("conversations_project", 1),
            ("conversations_conversation", n),
            ("conversations_message", 2 * n),
            ("ratings_item", n),
            ("ratings_rubric", 1),
            ("ratings_criterion", 1),
            ("ratings_judgment", m),
            ("ratings_score", m),
        ):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})")
    return {"items": n, "raters": s.raters, "judgments": m, "scores": m}
