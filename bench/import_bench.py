"""Transcript import benchmark: throughput and peak memory against PostgreSQL, with the rate of
a plain COPY of the same rows measured in the same run as the reference.

    .venv/bin/python bench/import_bench.py --conversations 50000 --scale 1 4

Options: --database-url (default postgres://postgres@127.0.0.1:5432/rateloop_bench; the
database is DROPPED and recreated, so its name must contain "bench"), --workdir (default
bench/out), --seed, --keep-files (keep the corpus files), --keep-db, --baseline-repeat (default
2), --foreign-keys auto|triggers (RATELOOP_IMPORT_FOREIGN_KEYS for the imports; default
auto, which checks them set-based where the database role may, as the postgres role here
may; the report says which way the imports checked), --profile (run each import under
cProfile, save bench/out/import-<N>.prof and print the top functions; timings are then
inflated by the profiler's overhead; it sees the importing thread, not the writer's thread
nor the parsing process).

What it does:
1. drops and recreates the scratch database and migrates it (``manage.py migrate`` in a
   subprocess with DATABASE_URL set); turns autovacuum off for the conversation tables so that
   it does not vacuum one step's rows while the next step is timed;
2. generates the corpus with bench/gen_corpus.py (native JSONL, 8 messages a conversation);
   the same seed gives the same records, so the smaller files are prefixes of the largest;
3. for each scale, empties the conversation tables, runs CHECKPOINT, then runs the import in a
   separate process: the ``import_transcripts`` management command, entered exactly as
   ``manage.py import_transcripts PATH --project P --create-project --no-progress
   --skip-checks`` does, in production mode (DJANGO_DEBUG=0). System checks are skipped here
   and in ``migrate``: they are not part of an import, and they import the URL
   configuration. "wall s" is the whole process (interpreter and Django start-up
   included); "import s" is the command alone, timed inside the process; the rates use
   "import s". CPU time is that of the process and of the child process it parses in (both
   reaped, so os.wait4 counts them); peak RSS is the sum of the two processes' peaks, each
   measured by the process itself (an upper bound: the child shares the pages it inherits
   at the fork, so the two never hold that much at once);
4. checks the row counts, exports the rows each scale's import wrote (COPY ... TO a file)
   and times COPY ... FROM STDIN of those bytes, read from the file in 1 MiB chunks, with
   psycopg 3 in one transaction (commit included; the fastest of --baseline-repeat runs, each
   into new tables) into two pairs of scratch tables, so that each scale is measured against
   a COPY of its own rows (a larger COPY writes more WAL and meets more checkpoints too):
   - "plain": the same columns and column types (NOT NULL included), nothing else. This is
     the physical limit the issue asks for; "% COPY" is measured against it;
   - "schema": the same indexes, unique and check constraints and deferred foreign keys as
     the application's tables, with PostgreSQL checking the foreign keys per row; "% schema".
     An import that checks them set-based (see CopyWriter) does less than this.

It exits non-zero when a step fails or the imported row counts are wrong; it does not check
the throughput or memory goals (it is a benchmark, not a test).
"""

import argparse
import cProfile
import io
import itertools
import json
import os
import platform
import pstats
import resource
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from gen_corpus import generate
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/rateloop_bench"
CONVERSATIONS = "conversations_conversation"
MESSAGES = "conversations_message"
KB_REFERENCES = "conversations_kbreference"
CHUNK = 1 << 20
NO_AUTOVACUUM = "autovacuum_enabled = false, toast.autovacuum_enabled = false"


@dataclass
class ImportRun:
    scale: int
    conversations: int
    messages: int
    wall_s: float
    import_s: float
    cpu_s: float
    peak_rss_mb: float
    batch_size: int
    foreign_keys: str

    @property
    def rows(self) -> int:
        return self.conversations + self.messages


@dataclass
class CopyRun:
    label: str
    conversations: int
    messages: int
    seconds: float

    @property
    def rows(self) -> int:
        return self.conversations + self.messages

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the import process ---------------------------------------------------------------------


def child_main(argv: list[str]) -> int:
    """Run one import as ``manage.py`` would, and write its timings to a JSON file."""
    parser = argparse.ArgumentParser(prog="import_bench.py --child")
    parser.add_argument("path")
    parser.add_argument("--project", required=True)
    parser.add_argument("--timings", type=Path, required=True)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    started = time.perf_counter()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import execute_from_command_line

    ready = time.perf_counter()
    command = [
        "manage.py",
        "import_transcripts",
        args.path,
        "--project",
        args.project,
        "--create-project",
        "--no-progress",
        "--skip-checks",
    ]
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    execute_from_command_line(command)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    done = time.perf_counter()
    from django.db import connection

    from conversations.accel.foreign_keys import set_based_checks_possible

    with connection.cursor() as cursor:  # what the import's CopyWriter.begin decided
        set_based = settings.IMPORT_FOREIGN_KEYS == "auto" and set_based_checks_possible(cursor)
    args.timings.write_text(
        json.dumps(
            {
                "setup_s": ready - started,
                "import_s": done - ready,
                "batch_size": settings.IMPORT_BATCH_SIZE,
                "foreign_keys": "set-based" if set_based else "per-row",
                # kilobytes on Linux; the children are the import's parsing process
                "self_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "children_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            }
        )
    )
    return 0


def child_env(database_url: str, foreign_keys: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        RATELOOP_IMPORT_FOREIGN_KEYS=foreign_keys,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="localhost",
    )
    return env


def run_import(
    *,
    path: Path,
    project: str,
    database_url: str,
    workdir: Path,
    profile: Path | None,
    foreign_keys: str,
) -> tuple[float, float, dict, str]:
    """Import ``path`` in a separate process.

    Return (wall s, CPU s, the timings it reported, its output)."""
    timings = workdir / f"{project}.timings.json"
    timings.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path)]
    cmd += ["--project", project, "--timings", str(timings)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    out_path, err_path = workdir / f"{project}.stdout", workdir / f"{project}.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=child_env(database_url, foreign_keys), stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    if code != 0:
        raise RuntimeError(f"the import of {path.name} exited with {code}:\n{stdout}{stderr}")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, json.loads(timings.read_text()), stdout.strip()


# --- the database ---------------------------------------------------------------------------


def recreate_database(database_url: str) -> None:
    name = conninfo_to_dict(database_url).get("dbname") or ""
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(database_url: str) -> None:
    name = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, dbname="postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def migrate(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "--skip-checks", "-v", "0"],
        cwd=ROOT,
        env=child_env(database_url, "auto"),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{result.stdout}{result.stderr}")


def quiet_autovacuum(conn: psycopg.Connection) -> None:
    """No autovacuum on the benchmark's tables: after each import it would vacuum the new rows
    while the next step is being timed. The import's own work is unchanged (an import is one
    transaction, whose rows autovacuum cannot touch before the commit anyway)."""
    for table in (CONVERSATIONS, MESSAGES, KB_REFERENCES):
        conn.execute(f"ALTER TABLE {table} SET ({NO_AUTOVACUUM})")


def empty_tables(conn: psycopg.Connection) -> None:
    conn.execute(f"TRUNCATE {KB_REFERENCES}, {MESSAGES}, {CONVERSATIONS} CASCADE")
    conn.execute("CHECKPOINT")


def count_rows(conn: psycopg.Connection, project: str) -> tuple[int, int]:
    conversations, messages = conn.execute(
        f"""SELECT count(DISTINCT c.id), count(m.id)
            FROM {CONVERSATIONS} c
            JOIN conversations_project p ON p.id = c.project_id
            LEFT JOIN {MESSAGES} m ON m.conversation_id = c.id
            WHERE p.slug = %s""",
        [project],
    ).fetchone()
    return conversations, messages


def export_rows(conn: psycopg.Connection, table: str, path: Path) -> None:
    """The table's rows as COPY text, exactly what a COPY into the same columns reads."""
    with path.open("wb") as f, conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
        for chunk in copy:
            f.write(chunk)


def create_scratch_tables(conn: psycopg.Connection, kind: str) -> dict[str, str]:
    """Scratch copies of the two tables; return {application table: scratch table}."""
    names = {CONVERSATIONS: f"bench_{kind}_conversation", MESSAGES: f"bench_{kind}_message"}
    for scratch in reversed(names.values()):
        conn.execute(f"DROP TABLE IF EXISTS {scratch}")
    like = "" if kind == "plain" else " INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES"
    for table, scratch in names.items():
        conn.execute(f"CREATE TABLE {scratch} (LIKE {table}{like}) WITH ({NO_AUTOVACUUM})")
    if kind == "schema":  # LIKE never copies foreign keys: add the application's
        for table, scratch in names.items():
            fks = conn.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
                [table],
            ).fetchall()
            for (definition,) in fks:
                for target, replacement in names.items():
                    definition = definition.replace(
                        f"REFERENCES {target}(", f"REFERENCES {replacement}("
                    )
                conn.execute(f"ALTER TABLE {scratch} ADD {definition}")
    return names


def copy_baseline(
    conn: psycopg.Connection,
    kind: str,
    files: dict[str, Path],
    counts: tuple[int, int],
    repeat: int,
) -> CopyRun:
    """The fastest of ``repeat`` COPYs of the exported rows into fresh scratch tables."""
    times = []
    for _ in range(repeat):
        names = create_scratch_tables(conn, kind)
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            for table, scratch in names.items():
                with (
                    files[table].open("rb") as f,
                    cursor.copy(f"COPY {scratch} FROM STDIN") as copy,
                ):
                    while chunk := f.read(CHUNK):
                        copy.write(chunk)
        times.append(time.perf_counter() - started)
        for scratch in reversed(names.values()):
            conn.execute(f"DROP TABLE {scratch}")
    log(f"COPY {kind}: {', '.join(f'{t:.1f}' for t in times)} s")
    return CopyRun(kind, counts[0], counts[1], min(times))


# --- the report -----------------------------------------------------------------------------


def report(
    runs: list[ImportRun],
    baselines: dict[int, tuple[CopyRun, CopyRun]],
    *,
    server: str,
    repeat: int,
    load: tuple[float, float],
) -> str:
    out = io.StringIO()
    w = out.write
    w(f"PostgreSQL {server}; {os.cpu_count()} CPUs; Python {platform.python_version()}; ")
    w(f"import batch size {runs[0].batch_size}; ")
    w(f"foreign keys checked {', '.join(sorted({r.foreign_keys for r in runs}))}; ")
    w(f"1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end\n\n")
    header = (
        f"{'scale':>5} {'convs':>9} {'messages':>10} {'wall s':>7} {'import s':>8} "
        f"{'conv/s':>7} {'rows/s':>8} {'% COPY':>7} {'% schema':>8} {'CPU s':>6} "
        f"{'peak RSS MB':>11}\n"
    )
    w(header)
    w("-" * (len(header) - 1) + "\n")
    for r in runs:
        rows_per_s = r.rows / r.import_s
        plain, schema = baselines[r.scale]
        w(
            f"{f'{r.scale}x':>5} {r.conversations:>9,} {r.messages:>10,} {r.wall_s:>7.1f} "
            f"{r.import_s:>8.1f} {r.conversations / r.import_s:>7,.0f} {rows_per_s:>8,.0f} "
            f"{100 * rows_per_s / plain.rows_per_s:>6.1f}% "
            f"{100 * rows_per_s / schema.rows_per_s:>7.1f}% {r.cpu_s:>6.1f} "
            f"{r.peak_rss_mb:>11.0f}\n"
        )
    for scale, (plain, schema) in sorted(baselines.items()):
        w(
            f"\nCOPY baseline at {scale}x: the rows that import wrote "
            f"({plain.rows:,} rows: {plain.conversations:,} conversations + "
            f"{plain.messages:,} messages), COPY text from a file, one transaction, "
            f"best of {repeat}\n"
        )
        for c, what in (
            (plain, "plain tables, same columns and types"),
            (schema, "same indexes, constraints, per-row FKs"),
        ):
            w(
                f"  {what:<40} {c.seconds:>6.1f} s {c.rows_per_s:>9,.0f} rows/s "
                f"(= {c.conversations / c.seconds:,.0f} conv/s)\n"
            )
    w(
        "\nrows = conversations + messages; rates use 'import s' (the command inside the "
        "process); wall s adds interpreter and Django start-up; CPU s is the import process's "
        "with its parsing process; peak RSS adds the two processes' peaks (an upper bound: "
        "the parsing process shares the pages it inherits at the fork).\n"
    )
    return out.getvalue()


def print_profile(path: Path, limit: int = 20) -> None:
    stream = io.StringIO()
    stats = pstats.Stats(str(path), stream=stream)
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    print(stream.getvalue())


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-files", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--baseline-repeat", type=int, default=2)
    parser.add_argument("--foreign-keys", choices=["auto", "triggers"], default="auto")
    args = parser.parse_args(argv)
    scales = sorted(set(args.scale))
    if args.conversations < 1 or scales[0] < 1 or args.baseline_repeat < 1:
        parser.error("--conversations, --scale and --baseline-repeat must be positive")
    workdir: Path = args.workdir.resolve()
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]

    log(f"recreating and migrating {conninfo_to_dict(args.database_url).get('dbname')}")
    recreate_database(args.database_url)
    migrate(args.database_url)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        quiet_autovacuum(conn)
    workdir.mkdir(parents=True, exist_ok=True)

    sizes = {s: args.conversations * s for s in scales}
    corpora = {s: workdir / f"corpus-{n}-seed{args.seed}.jsonl" for s, n in sizes.items()}
    largest = scales[-1]
    t = time.perf_counter()
    _, largest_messages = generate(sizes[largest], corpora[largest], args.seed)
    for s in scales[:-1]:  # same seed: the smaller corpora are prefixes of the largest
        with corpora[largest].open("rb") as src, corpora[s].open("wb") as dst:
            dst.writelines(itertools.islice(src, sizes[s]))
    log(
        f"generated {', '.join(f'{sizes[s]:,}' for s in scales)} conversations "
        f"({corpora[largest].stat().st_size / 1e6:,.0f} MB largest) "
        f"in {time.perf_counter() - t:.1f} s"
    )

    runs: list[ImportRun] = []
    baselines: dict[int, tuple[CopyRun, CopyRun]] = {}
    exported: dict[str, Path] = {}
    try:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]
            for s in scales:
                n = sizes[s]
                project = f"bench-{n}"
                empty_tables(conn)
                log(f"importing {n:,} conversations ({s}x) in a separate process")
                profile = workdir / f"import-{n}.prof" if args.profile else None
                wall, cpu, timings, summary = run_import(
                    path=corpora[s],
                    project=project,
                    database_url=args.database_url,
                    workdir=workdir,
                    profile=profile,
                    foreign_keys=args.foreign_keys,
                )
                log(summary)
                peak = timings["self_rss_mb"] + timings["children_rss_mb"]
                conversations, messages = count_rows(conn, project)
                expected = n * 8
                if conversations != n or messages != expected:
                    raise RuntimeError(
                        f"{project}: expected {n} conversations and {expected} messages in the "
                        f"database, found {conversations} and {messages}"
                    )
                runs.append(
                    ImportRun(
                        s,
                        conversations,
                        messages,
                        wall,
                        timings["import_s"],
                        cpu,
                        peak,
                        timings["batch_size"],
                        timings["foreign_keys"],
                    )
                )
                log(
                    f"{s}x: wall {wall:.1f} s, import {timings['import_s']:.1f} s, "
                    f"CPU {cpu:.1f} s, peak RSS {timings['self_rss_mb']:.0f} MB + "
                    f"{timings['children_rss_mb']:.0f} MB (parsing process)"
                )
                if profile is not None:
                    print_profile(profile)
                for table in (CONVERSATIONS, MESSAGES):
                    exported[table] = workdir / f"{table}-{n}.copy"
                    export_rows(conn, table, exported[table])
                log(f"COPY baseline with the same {n + messages:,} rows")
                baselines[s] = tuple(
                    copy_baseline(
                        conn, kind, exported, (conversations, messages), args.baseline_repeat
                    )
                    for kind in ("plain", "schema")
                )
                for path in exported.values():
                    path.unlink()
    finally:
        for path in exported.values():
            path.unlink(missing_ok=True)
        for path in workdir.glob("bench-*.*"):
            path.unlink()
        if not args.keep_files:
            for path in corpora.values():
                path.unlink(missing_ok=True)
            if not any(workdir.iterdir()):
                workdir.rmdir()
        if not args.keep_db:
            drop_database(args.database_url)

    load = (load_at_start, os.getloadavg()[0])
    print(report(runs, baselines, server=server, repeat=args.baseline_repeat, load=load))
    log(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child_main(sys.argv[2:]))
    try:
        sys.exit(main())
    except (RuntimeError, psycopg.Error, OSError) as exc:
        print(f"import_bench: {exc}", file=sys.stderr)
        sys.exit(1)
