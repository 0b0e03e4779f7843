"""Export benchmark: about 1,000,000 pairwise judgments to JSONL and Parquet through the export
job, against a naive pandas export of the same data, at two sizes.

    .venv/bin/python bench/export_bench.py

Options: --database-url (default postgres://postgres@127.0.0.1:5432/rateloop_ebench_data; the
database is DROPPED and recreated unless --reuse, so its name must contain "bench"), --reuse
(keep the seeded rows), --pairs (pairs of the 1x project, default 165,000; the 2x project has
twice as many), --seed, --repeat (rounds of measurements, default 2; the table shows the
fastest run of each), --keep-files (keep the exported files in bench/out/export/), --profile
(afterwards, run the 2x JSONL job once more under cProfile and print the top functions; its
figures are not in the table).

What it does:
1. unless --reuse: drops, recreates and migrates the database (``manage.py migrate`` in a
   subprocess), seeds it with COPY (bench/export_seed.py: two pairwise projects, 1x and 2x,
   three judgments a pair), then VACUUM ANALYZE and CHECKPOINT;
2. for each scale, --repeat rounds of the measurements below, interleaved so that a
   noisy neighbour hits all of them alike, each in a fresh process in production mode
   (DJANGO_DEBUG=0). Peak RSS is the process's own VmHWM (interpreter and imports included),
   CPU time comes from ``os.wait4``, and the time its threads waited for a CPU (run-queue
   delay: other processes on a shared machine) from /proc schedstat:
   - "cache warm": the ``export_cache_warm`` task for the project, which queueing pairs
     sends when it commits (the seeding writes rows with COPY, so the benchmark sends it),
     with the fast path's caches removed first: it encodes every pair's text into the JSON
     and the text caches (exports/accel/warm.py). Timed on its own, not an export;
   - "job jsonl", "job parquet": then the project's first exports, ``export_job_create``
     (format ``trl``: prompt, chosen, rejected; majority vote; both-bad pairs and ties
     dropped) by the project's lead; each must take the fast path with its cache in place
     ("fast/warm", else the run stops). "jsonl cold", "parquet cold": the same two with the
     caches removed again (a deployment with ``RATELOOP_EXPORT_CACHE_WARM=0`` or whose
     exporting worker has no access to the warmed folder): each builds its cache as it goes.
     The "path" column says which path the job took (from the child process). The
     Celery task runs eagerly (CELERY_TASK_ALWAYS_EAGER=1) when the job row commits, so the
     process runs the real task, ``export_job_run``, file, manifest and card, and the job row
     updates. "s" runs from the ``export_job_create`` call until it returns with the job
     finished (interpreter and Django start-up excluded);
   - "naive": one SQL query joining judgments, items and the three messages, fetched with
     psycopg into a pandas DataFrame; votes grouped per pair with pandas to pick the majority
     (the same rule as the exporter), prompt/chosen/rejected columns built, then
     ``DataFrame.to_json(orient="records", lines=True)``. "s" runs from connecting to the
     file written (interpreter and pandas import excluded);
3. checks that the three outputs of a scale have the same number of rows and that the first
   1,000 rows of the job's JSONL and the naive JSONL are the same records;
4. measures two floors after each round: the exporter's encoder (orjson) alone on the first
   100,000 rows of the JSONL export, and one COPY of the text of every pair (prompt and both
   responses) into this process with nothing done with it, as rows written per second: no
   export that encodes every row, or reads every pair's text from PostgreSQL, can be faster
   than these (the fast path's warm JSONL export does neither: its cache holds the text
   already encoded);
5. checks that the cold and the warm file of each type are identical, then prints a table:
   rows/s = rows written / s; "vs naive" = naive s / this s at that scale. The throughput
   goal is judged on the first exports after the warm ("job jsonl", "job parquet"), and
   printed for the cold ones separately.

Goals (from the issue): at least 100,000 rows/s, at least 2x faster than the naive export,
peak RSS under 300 MB and flat from 1x to 2x. The script prints whether each holds; it exits
non-zero only when a step fails or the outputs disagree.
"""

import argparse
import cProfile
import hashlib
import itertools
import json
import os
import platform
import pstats
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from export_seed import LEAD_NAME, Scenario, seed
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT = BENCH_DIR / "out" / "export"
CACHE = OUT / "cache"  # the fast export's text cache, for the children (EXPORT_CACHE_DIR)


DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/rateloop_ebench_data"
FORMAT = "trl"
CHECK_ROWS = 1000
NAIVE_SQL = """
SELECT i.id AS item_id, j.preference, j.both_bad,
       p.content AS prompt, a.content AS response_a, b.content AS response_b
FROM ratings_judgment j
JOIN ratings_item i ON i.id = j.item_id
JOIN conversations_message a ON a.id = i.response_id
JOIN conversations_message b ON b.id = i.response_b_id
JOIN conversations_message p
  ON p.conversation_id = i.conversation_id AND p.position = 0 AND p.candidate = 0
WHERE i.project_id = %s AND i.kind = 'pairwise' AND j.is_current
  AND j.preference IS NOT NULL
"""
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
        CELERY_TASK_ALWAYS_EAGER="1",
        RATELOOP_MEDIA_ROOT=str(OUT / "media"),
        RATELOOP_EXPORT_CACHE_DIR=str(CACHE),
    )
    return env


# --------------------------------------------------------------------------------------------
# Database
# --------------------------------------------------------------------------------------------


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


def vacuum(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


@dataclass(frozen=True)
class Scale:
    label: str
    project_id: int
    slug: str
    pairs: int
    judgments: int


def scales(database_url: str, scenario: Scenario) -> list[Scale]:
    out = []
    with psycopg.connect(database_url) as conn:
        for label, (_, slug, _) in zip(("1x", "2x"), scenario.projects(), strict=True):
            row = conn.execute(
                "SELECT p.id, (SELECT count(*) FROM ratings_item i WHERE i.project_id = p.id),"
                " (SELECT count(*) FROM ratings_judgment j JOIN ratings_item i"
                "  ON i.id = j.item_id WHERE i.project_id = p.id AND j.is_current)"
                " FROM conversations_project p WHERE p.slug = %s",
                (slug,),
            ).fetchone()
            if row is None:
                raise SystemExit(f"no project {slug!r} in this database: run without --reuse")
            out.append(Scale(label, row[0], slug, row[1], row[2]))
    return out


# --------------------------------------------------------------------------------------------
# Children: each measurement runs in its own process
# --------------------------------------------------------------------------------------------


def own_usage() -> dict[str, float]:
    """This process's peak RSS and the time its threads waited for a CPU, from /proc.

    Peak RSS is VmHWM, which starts again at exec: the parent's ``ru_maxrss`` of a child
    would also count the pages of the forked parent before exec (the seeding process here).
    The wait comes from schedstat (run-queue delay): on a shared machine it says how much of
    the wall time went to other processes.
    """
    status = Path("/proc/self/status").read_text()
    hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    waited = sum(
        int((task / "schedstat").read_text().split()[1])
        for task in Path("/proc/self/task").iterdir()
    )
    return {"peak_rss_mb": hwm / 1024, "cpu_wait_s": waited / 1e9}


def job_child(slug: str, file_type: str, profile_to: str | None) -> None:
    """Create the export job as the project's lead; the eager task renders it. Print JSON."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from conversations.models import Project
    from exports.services import export_job_create, job_dir

    project = Project.objects.get(slug=slug)
    lead = get_user_model().objects.get(username=LEAD_NAME)
    taken = path_spy()

    def create():
        return export_job_create(project=project, user=lead, fmt=FORMAT, file_type=file_type)

    started = time.perf_counter()
    if profile_to:
        profiler = cProfile.Profile()
        job = profiler.runcall(create)
        profiler.dump_stats(profile_to)
    else:
        job = create()
    elapsed = time.perf_counter() - started
    job.refresh_from_db()
    data = next(f for f in job.files if "kind" not in f)
    print(
        json.dumps(
            {
                "state": job.state,
                "error": job.error,
                "seconds": elapsed,
                "in_task_s": (job.finished_at - job.started_at).total_seconds(),
                "rows": job.rows_written,
                "counts": job.counts,
                "path": str(job_dir(job) / data["name"]),
                "bytes": data["bytes"],
                "taken": taken(),
                **own_usage(),
            }
        )
    )


def warm_child(slug: str) -> None:
    """Send the ``export_cache_warm`` task for the project, as queueing its pairs does when
    it commits; the task runs eagerly in this process. Print JSON."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from conversations.models import Project
    from exports.tasks import export_cache_warm

    project = Project.objects.get(slug=slug)
    started = time.perf_counter()
    result = export_cache_warm.delay(project.pk).get()
    elapsed = time.perf_counter() - started
    print(json.dumps({**result, "seconds": elapsed, **own_usage()}))


def path_spy():
    """Watch which export path the job takes; return a function that describes it."""
    from exports.accel import cache, fast

    seen: dict = {"path": "general", "stores": []}
    run_fast_export, init = fast.run_fast_export, cache.FragmentCache.__init__

    def fast_spy(**kwargs):
        seen["path"] = "fast"
        return run_fast_export(**kwargs)

    def init_spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen["stores"].append(self)

    fast.run_fast_export, cache.FragmentCache.__init__ = fast_spy, init_spy

    def describe() -> str:
        if not seen["stores"]:
            return seen["path"]
        encoded = sum(store.built for store in seen["stores"])
        return f"{seen['path']}/{'cold' if encoded else 'warm'}"

    return describe


def naive_child(database_url: str, project_id: int, out: str) -> None:
    """Everything into one DataFrame, majority per pair with pandas, ``to_json``. Print JSON."""
    import pandas as pd

    started = time.perf_counter()
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(NAIVE_SQL, (project_id,))
        columns = [c.name for c in cursor.description or ()]
        frame = pd.DataFrame(cursor.fetchall(), columns=columns)
    loaded = time.perf_counter()
    frame["a"] = frame["preference"] < 0
    frame["b"] = frame["preference"] > 0
    frame["t"] = frame["preference"] == 0
    pairs = frame.groupby("item_id", sort=True).agg(
        a=("a", "sum"),
        b=("b", "sum"),
        t=("t", "sum"),
        bad=("both_bad", "sum"),
        n=("both_bad", "size"),
        prompt=("prompt", "first"),
        response_a=("response_a", "first"),
        response_b=("response_b", "first"),
    )
    del frame
    a_wins = (pairs["a"] > pairs["b"]) & (pairs["a"] >= pairs["t"])
    b_wins = (pairs["b"] > pairs["a"]) & (pairs["b"] >= pairs["t"])
    kept = pairs[(pairs["bad"] * 2 <= pairs["n"]) & (a_wins | b_wins)]
    a_won = a_wins[kept.index]
    rows = pd.DataFrame(
        {
            "prompt": kept["prompt"],
            "chosen": kept["response_a"].where(a_won, kept["response_b"]),
            "rejected": kept["response_b"].where(a_won, kept["response_a"]),
        }
    )
    grouped = time.perf_counter()
    rows.to_json(out, orient="records", lines=True, force_ascii=False)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "seconds": done - started,
                "load_s": loaded - started,
                "group_s": grouped - loaded,
                "write_s": done - grouped,
                "rows": len(rows),
                "path": out,
                "bytes": Path(out).stat().st_size,
                **own_usage(),
            }
        )
    )


def run_child(args: list[str], env: dict[str, str]) -> dict:
    """Run this script as a child; return its JSON line plus its wall and CPU time."""
    errors = OUT / "child.stderr"
    started = time.perf_counter()
    with errors.open("w") as stderr:  # the eager task's log lines; shown only on failure
        proc = subprocess.Popen(
            [sys.executable, __file__, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        out = proc.stdout.read() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(
            f"{args[:3]} failed with exit code {os.waitstatus_to_exitcode(status)}:\n"
            + errors.read_text()[-3000:]
        )
    result = json.loads(out.strip().splitlines()[-1])
    result.update(process_s=wall, cpu_s=usage.ru_utime + usage.ru_stime)
    return result


# --------------------------------------------------------------------------------------------
# Measurements and report
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    variant: str
    scale: Scale
    result: dict
    naive_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.result["rows"] / self.result["seconds"]


def measure_job(database_url: str, scale: Scale, file_type: str) -> dict:
    result = run_child(["--job-child", scale.slug, file_type], child_env(database_url))
    if result["state"] != "succeeded":
        raise RuntimeError(f"the {file_type} job failed: {result['error']}")
    log(
        f"{scale.label} job {file_type}: {result['rows']:,} rows, {result['bytes'] / 1e6:,.0f} MB"
        f" in {result['seconds']:.2f} s (in task {result['in_task_s']:.2f} s, process"
        f" {result['process_s']:.2f} s, CPU {result['cpu_s']:.1f} s, waited for a CPU"
        f" {result['cpu_wait_s']:.1f} s), peak RSS {result['peak_rss_mb']:.0f} MB;"
        f" dropped {result['counts']['dropped']}; path {result['taken']}"
    )
    return result


def measure_warm(database_url: str, scale: Scale) -> dict:
    result = run_child(["--warm-child", scale.slug], child_env(database_url))
    log(
        f"{scale.label} cache warm: {result['pairs']:,} pairs, encoded {result['encoded_json']:,}"
        f" as JSON and {result['encoded_text']:,} as text in {result['seconds']:.2f} s"
        f" ({result['pairs'] / result['seconds']:,.0f} pairs/s; process"
        f" {result['process_s']:.2f} s, CPU {result['cpu_s']:.1f} s, waited for a CPU"
        f" {result['cpu_wait_s']:.1f} s), peak RSS {result['peak_rss_mb']:.0f} MB"
    )
    return result


def measure_naive(database_url: str, scale: Scale) -> dict:
    out = OUT / f"naive-{scale.label}.jsonl"
    result = run_child(
        ["--naive-child", str(scale.project_id), str(out), "--database-url", database_url],
        child_env(database_url),
    )
    log(
        f"{scale.label} naive: {result['rows']:,} rows, {result['bytes'] / 1e6:,.0f} MB in"
        f" {result['seconds']:.2f} s (query+fetch {result['load_s']:.2f}, group"
        f" {result['group_s']:.2f}, to_json {result['write_s']:.2f}; process"
        f" {result['process_s']:.2f} s, CPU {result['cpu_s']:.1f} s, waited for a CPU"
        f" {result['cpu_wait_s']:.1f} s), peak RSS {result['peak_rss_mb']:.0f} MB"
    )
    return result


def measure_scale(
    database_url: str, scale: Scale, repeat: int, keep_files: bool, data: dict
) -> dict[str, dict]:
    """Each variant ``repeat`` times, interleaved; the fastest run of each, with the highest
    peak RSS of its runs. Also measures the JSON floor on the first JSONL written."""
    best: dict[str, dict] = {}
    for attempt in range(1, repeat + 1):
        log(f"{scale.label}: run {attempt} of {repeat}")
        # what queueing the pairs does once it commits: the task fills both caches
        shutil.rmtree(CACHE, ignore_errors=True)
        warmed = measure_warm(database_url, scale)
        if scale.label not in data.setdefault("warm", {}) or (
            warmed["seconds"] < data["warm"][scale.label]["seconds"]
        ):
            data["warm"][scale.label] = warmed
        # the project's first exports, then the same with no cache (warming off or lost)
        results = {
            "job jsonl": measure_job(database_url, scale, "jsonl"),
            "job parquet": measure_job(database_url, scale, "parquet"),
        }
        shutil.rmtree(CACHE, ignore_errors=True)
        results["jsonl cold"] = measure_job(database_url, scale, "jsonl")
        results["parquet cold"] = measure_job(database_url, scale, "parquet")
        results["naive"] = measure_naive(database_url, scale)
        for variant in ("job jsonl", "job parquet"):
            if results[variant]["taken"] != "fast/warm":
                raise RuntimeError(f"{scale.label} {variant}: took {results[variant]['taken']}")
        for cold, warm in (("jsonl cold", "job jsonl"), ("parquet cold", "job parquet")):
            if digest(results[cold]["path"]) != digest(results[warm]["path"]):
                raise RuntimeError(f"{scale.label}: the {cold} and {warm} files differ")
        check_same(scale, *[results[k] for k in ("job jsonl", "job parquet", "naive")])
        floor = floors(database_url, scale, results["job jsonl"]["path"], results["naive"]["rows"])
        previous_floor = data.setdefault("floors", {}).get(scale.label)
        if previous_floor is None or floor["read_s"] < previous_floor["read_s"]:
            data["floors"][scale.label] = floor
        log(
            f"{scale.label} floors: orjson alone {floor['encode_rate']:,.0f} rows/s; reading the"
            f" pairs' text alone {floor['read_bytes'] / 1e6:,.0f} MB in {floor['read_s']:.2f} s"
            f" = {floor['read_rate']:,.0f} rows written/s"
        )
        for variant, result in results.items():
            previous = best.get(variant, result)
            peak = max(result["peak_rss_mb"], previous["peak_rss_mb"])
            best[variant] = result if result["seconds"] <= previous["seconds"] else previous
            best[variant]["peak_rss_mb"] = peak
            if not keep_files:
                Path(result["path"]).unlink()
    return best


def digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_same(scale: Scale, jsonl: dict, parquet: dict, naive: dict) -> None:
    """Same row counts, and the same first rows in the job's and the naive JSONL."""
    counts = {"job jsonl": jsonl["rows"], "job parquet": parquet["rows"], "naive": naive["rows"]}
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"{scale.label}: the outputs disagree on the row count: {counts}")
    with open(jsonl["path"], encoding="utf-8") as a, open(naive["path"], encoding="utf-8") as b:
        for n, (x, y) in enumerate(zip(itertools.islice(a, CHECK_ROWS), b, strict=False)):
            if json.loads(x) != json.loads(y):
                raise RuntimeError(f"{scale.label}: row {n} differs:\n{x[:300]}\n{y[:300]}")


TEXT_SQL = """
SELECT p.content, a.content, b.content
FROM ratings_item i
JOIN conversations_message a ON a.id = i.response_id
JOIN conversations_message b ON b.id = i.response_b_id
JOIN conversations_message p
  ON p.conversation_id = i.conversation_id AND p.position = 0 AND p.candidate = 0
WHERE i.project_id = {pid} AND i.kind = 'pairwise'
"""


def floors(database_url: str, scale: Scale, path: str, rows_written: int) -> dict:
    """Two limits measured on this machine, now: encoding the first 100,000 rows of the
    exported JSONL with the exporter's encoder (orjson) alone, and reading the text every
    export of these pairs must read (prompt and both responses of every pair, one COPY to
    this process, nothing done with it), expressed in rows written per second."""
    import orjson

    with open(path, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in itertools.islice(lines, 100_000)]
    started = time.perf_counter()
    size = sum(len(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)) for row in rows)
    encode_s = time.perf_counter() - started
    received = 0
    with psycopg.connect(database_url) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        started = time.perf_counter()
        copy_sql = f"COPY ({TEXT_SQL.format(pid=int(scale.project_id))}) TO STDOUT"
        with conn.cursor().copy(copy_sql) as copy:
            for block in copy:
                received += len(block)
        read_s = time.perf_counter() - started
    return {
        "encode_rows": len(rows),
        "encode_rate": len(rows) / encode_s,
        "encode_bytes": size,
        "read_s": read_s,
        "read_bytes": received,
        "read_rate": rows_written / read_s,
    }


def report(data: dict, rows: list[Row], goals: dict[str, bool]) -> str:
    lines = [
        f"PostgreSQL {data['server']}; {os.cpu_count()} CPUs; Python {platform.python_version()}",
        f"data: {data['describe']}",
        "",
        f"{'variant':<12} {'scale':>5} {'pairs':>9} {'judgments':>10} {'rows written':>12}"
        f" {'s':>7} {'rows/s':>9} {'peak RSS MB':>11} {'vs naive':>8} {'CPU s':>6}"
        f" {'waited s':>8} {'path':<9}",
        "-" * 118,
    ]
    for r in rows:
        lines.append(
            f"{r.variant:<12} {r.scale.label:>5} {r.scale.pairs:>9,} {r.scale.judgments:>10,}"
            f" {r.result['rows']:>12,} {r.result['seconds']:>7.2f} {r.rate:>9,.0f}"
            f" {r.result['peak_rss_mb']:>11.0f} {r.naive_s / r.result['seconds']:>7.1f}x"
            f" {r.result['cpu_s']:>6.1f} {r.result['cpu_wait_s']:>8.1f}"
            f" {r.result.get('taken', '-'):<9}"
        )
    lines += [
        "",
        f"Fastest of {data['repeat']} interleaved runs per variant; peak RSS: the highest of"
        " those runs (VmHWM of the whole process, interpreter and imports included).",
        "s: the export inside its process (job: export_job_create until the job is finished;"
        " naive: query to file written); rows/s = rows written / s; vs naive = naive s / s;"
        " CPU s: the whole process; waited s: its threads' time runnable but waiting for a CPU"
        " (other processes on the machine); path: the export path the job took (fast/cold:"
        " the fast path, building the project's cache for the file type (JSONL: before"
        " writing; Parquet: while writing); fast/warm: the fast path with the cache in place;"
        " general: exports/pipeline.py's record by record path).",
        *(
            f"floors at {label} (best of the runs): the exporter's encoder (orjson) alone on"
            f" {f['encode_rows']:,} of the rows: {f['encode_rate']:,.0f} rows/s; reading the"
            f" text of every pair (prompt and both responses, one COPY, nothing done with it):"
            f" {f['read_bytes'] / 1e6:,.0f} MB in {f['read_s']:.2f} s ="
            f" {f['read_rate']:,.0f} rows written/s"
            for label, f in data["floors"].items()
        ),
        *(
            f"cache warm at {label} (the export_cache_warm task that queueing sends on commit,"
            f" fresh process, best of the runs): {w['pairs']:,} pairs in {w['seconds']:.2f} s ="
            f" {w['pairs'] / w['seconds']:,.0f} pairs/s, CPU {w['cpu_s']:.1f} s, peak RSS"
            f" {w['peak_rss_mb']:.0f} MB"
            for label, w in data["warm"].items()
        ),
        "goals: " + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in goals.items()),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--pairs", type=int, default=Scenario.pairs)
    parser.add_argument("--seed", type=int, default=Scenario.seed)
    parser.add_argument("--keep-files", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--job-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--naive-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--warm-child", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job_child:
        job_child(*args.job_child, args.profile_to)
        return 0
    if args.warm_child:
        warm_child(args.warm_child)
        return 0
    if args.naive_child:
        naive_child(args.database_url, int(args.naive_child[0]), args.naive_child[1])
        return 0

    scenario = Scenario(pairs=args.pairs, seed=args.seed)
    log(scenario.describe())
    if not args.reuse:
        started = time.perf_counter()
        recreate_database(args.database_url)
        migrate(args.database_url)
        log(f"recreated and migrated {conninfo_to_dict(args.database_url)['dbname']}")
        seed(args.database_url, scenario)
        vacuum(args.database_url)
        log(f"seeded and vacuumed in {time.perf_counter() - started:.1f} s")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    with psycopg.connect(args.database_url) as conn:
        server = conn.execute("SHOW server_version").fetchone()
    data = {"server": server[0] if server else "?", "describe": scenario.describe()}
    data["repeat"] = args.repeat
    rows: list[Row] = []
    for scale in scales(args.database_url, scenario):
        best = measure_scale(args.database_url, scale, args.repeat, args.keep_files, data)
        rows += [Row(variant, scale, r, best["naive"]["seconds"]) for variant, r in best.items()]
    jobs = [r for r in rows if r.variant != "naive"]
    # the project's first exports after queueing (the cache warmed); cold: without the warm
    peak = {
        label: max(r.result["peak_rss_mb"] for r in jobs if r.scale.label == label)
        for label in ("1x", "2x")
    }
    goals = {
        ">= 100,000 rows/s (job jsonl)": all(
            r.rate >= 100_000 for r in jobs if r.variant == "job jsonl"
        ),
        ">= 100,000 rows/s (job parquet)": all(
            r.rate >= 100_000 for r in jobs if r.variant == "job parquet"
        ),
        ">= 100,000 rows/s (jsonl cold)": all(
            r.rate >= 100_000 for r in jobs if r.variant == "jsonl cold"
        ),
        ">= 100,000 rows/s (parquet cold)": all(
            r.rate >= 100_000 for r in jobs if r.variant == "parquet cold"
        ),
        ">= 2x naive (all jobs)": all(r.naive_s >= 2 * r.result["seconds"] for r in jobs),
        "peak RSS < 300 MB": all(r.result["peak_rss_mb"] < 300 for r in jobs),
        "flat 1x -> 2x (within 10%)": peak["2x"] <= 1.1 * peak["1x"],
    }
    print(report(data, rows, goals))
    if args.profile:
        path = OUT / "export-2x-jsonl.prof"
        big = scales(args.database_url, scenario)[-1]
        run_child(
            ["--job-child", big.slug, "jsonl", "--profile-to", str(path)],
            child_env(args.database_url),
        )
        stats = pstats.Stats(str(path), stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
    if not args.keep_files:
        shutil.rmtree(OUT, ignore_errors=True)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
