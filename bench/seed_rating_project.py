"""Seed the project that bench/rating_load.py rates: N pairwise items with overlap 3, a lead
and R evaluators with API tokens, in a scratch PostgreSQL database.

    .venv/bin/python bench/seed_rating_project.py --pairs 100000 --raters 32

Options: --database-url (default postgres://postgres@127.0.0.1:5432/rateloop_load_bench; the
database is DROPPED and recreated, so its name must contain "bench"), --slug (default
"load"), --overlap (default 3), --seed, --reset-only (keep the seeded rows and only delete
the assignments and judgments of earlier runs, which is what ``rating_load.py --reuse`` does).

It goes through the application's own services, as a lead would:
1. drops and recreates the database and migrates it (``manage.py migrate``, in a subprocess);
2. creates the project (overlap 3, the default gold rate 0.05 and no gold item), a lead and
   the evaluators (``rater01``...), each with a membership and a token;
3. imports N native-JSONL conversations with ``transcript_import`` (COPY): a user turn, an
   assistant turn and a second user turn (50-300 and 200-1,200 characters), then two
   candidate responses (200-1,200 characters each) at the last position, i.e. one pair per
   conversation. The records are generated on the fly, nothing is written to disk;
4. creates the pairwise items with ``items_queue(kinds=("pairwise",))`` as the lead;
5. runs VACUUM ANALYZE and CHECKPOINT, so that the load test starts on fresh statistics and
   no autovacuum or checkpoint of the seeding runs during the measurement.

It prints one line a step on stderr and, at the end, one JSON line on stdout with the counts.
"""

import argparse
import io
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/rateloop_load_bench"
MODELS = ("model-a", "model-b", "model-c", "model-d")
VOCABULARY = (
    "the order was shipped on monday and should arrive within three business days please "
    "check your tracking number in the account page if the parcel does not arrive contact "
    "support we can refund the amount or send a replacement our policy allows returns for "
    "thirty days after delivery the warranty covers defects but not accidental damage you "
    "can update your address before the order ships the invoice is attached to the email "
    "password reset links expire after one hour two factor authentication is recommended"
)
T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def child_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=env.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        CELERY_BROKER_URL=env.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/14",
        # no export here, and no worker: queueing must not leave cache warms in the broker
        RATELOOP_EXPORT_CACHE_WARM="0",
    )
    return env


def recreate_database(database_url: str) -> None:
    name = conninfo_to_dict(database_url).get("dbname") or ""
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def migrate(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "--skip-checks", "-v", "0"],
        cwd=ROOT,
        env=child_env(database_url),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{result.stdout}{result.stderr}")


class RecordStream(io.RawIOBase):
    """A read-only byte stream of JSONL lines produced by an iterator, generated on demand."""

    def __init__(self, lines: Iterator[bytes]):
        self._lines = lines
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while len(self._buffer) < len(target):
            chunk = next(self._lines, None)
            if chunk is None:
                break
            self._buffer += chunk
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def records(pairs: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    words = VOCABULARY.split()
    text = " ".join(rng.choice(words) for _ in range(200_000))

    def snippet(low: int, high: int) -> str:
        size = rng.randint(low, high)
        start = rng.randrange(len(text) - size)
        return text[start : start + size].strip().capitalize() + "."

    for n in range(pairs):
        a, b = rng.sample(MODELS, 2)
        record = {
            "id": f"conv-{n:07d}",
            "messages": [
                {"role": "user", "content": snippet(50, 300)},
                {"role": "assistant", "content": snippet(200, 1200)},
                {"role": "user", "content": snippet(50, 300)},
            ],
            "candidates": [
                {"content": snippet(200, 1200), "model": a},
                {"content": snippet(200, 1200), "model": b},
            ],
        }
        yield json.dumps(record).encode() + b"\n"


def setup_django(database_url: str) -> None:
    os.environ.update(child_env(database_url))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(*, slug: str, pairs: int, raters: int, overlap: int, seed: int) -> dict:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from conversations.models import Project, Role
    from conversations.services.imports import transcript_import
    from conversations.services.projects import membership_set
    from ratings.services.items import items_queue

    user_model = get_user_model()
    project = Project.objects.create(
        slug=slug, name=f"Load test ({pairs:,} pairs)", overlap=overlap
    )
    lead = user_model(username="lead")
    lead.set_unusable_password()
    lead.save()
    membership_set(project=project, user=lead, role=Role.LEAD)
    Token.objects.create(user=lead)
    for i in range(1, raters + 1):
        user = user_model(username=f"rater{i:02d}")
        user.set_unusable_password()  # no password hashing: the benchmark uses tokens
        user.save()
        membership_set(project=project, user=user, role=Role.EVALUATOR)
        Token.objects.create(user=user)
    log(f"project {slug!r}: a lead and {raters} evaluators with tokens")

    started = time.perf_counter()
    summary = transcript_import(
        project=project,
        stream=RecordStream(records(pairs, seed)),
        source_name=f"load-{pairs}.jsonl",
        fmt="native",
    )
    log(
        f"transcript_import: {summary.imported:,} conversations in "
        f"{time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    counts = items_queue(project=project, user=lead, kinds=("pairwise",))
    log(f"items_queue: {counts} in {time.perf_counter() - started:.1f} s")
    return {"slug": slug, "conversations": summary.imported, "items": counts.get("pairwise", 0)}


def vacuum(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def reset(database_url: str, slug: str) -> dict:
    """Delete what earlier runs wrote (assignments, judgments, scores), keep the seeded rows."""
    with psycopg.connect(database_url) as conn:
        project_id = conn.execute(
            "SELECT id FROM conversations_project WHERE slug = %s", (slug,)
        ).fetchone()
        if project_id is None:
            raise SystemExit(f"no project {slug!r} in this database: seed it first")
        conn.execute(
            "DELETE FROM ratings_score WHERE judgment_id IN (SELECT j.id FROM ratings_judgment j"
            " JOIN ratings_item i ON i.id = j.item_id WHERE i.project_id = %s)",
            project_id,
        )
        conn.execute(
            "DELETE FROM ratings_judgment WHERE item_id IN"
            " (SELECT id FROM ratings_item WHERE project_id = %s)",
            project_id,
        )
        deleted = conn.execute(
            "DELETE FROM ratings_assignment WHERE project_id = %s", project_id
        ).rowcount
        conn.execute(
            "UPDATE ratings_item SET n_active = 0, n_done = 0"
            " WHERE project_id = %s AND (n_active <> 0 OR n_done <> 0)",
            project_id,
        )
        items = conn.execute(
            "SELECT count(*) FROM ratings_item WHERE project_id = %s AND kind = 'pairwise'",
            project_id,
        ).fetchone()[0]
    log(f"reset: deleted {deleted:,} assignments of earlier runs; {items:,} pairwise items")
    return {"slug": slug, "items": items, "deleted_assignments": deleted}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--slug", default="load")
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--raters", type=int, default=32)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reset-only", action="store_true")
    args = parser.parse_args()

    if args.reset_only:
        # the schema of the code being measured: migrations added since the seeding apply
        migrate(args.database_url)
        result = reset(args.database_url, args.slug)
    else:
        recreate_database(args.database_url)
        migrate(args.database_url)
        log(f"recreated and migrated {conninfo_to_dict(args.database_url)['dbname']}")
        setup_django(args.database_url)
        result = seed(
            slug=args.slug,
            pairs=args.pairs,
            raters=args.raters,
            overlap=args.overlap,
            seed=args.seed,
        )
        from django.db import connection

        connection.close()
    vacuum(args.database_url)
    log("VACUUM ANALYZE and CHECKPOINT done")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
