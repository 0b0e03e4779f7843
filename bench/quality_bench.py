"""Quality run benchmark: a full quality computation on 1,000,000 rating cells, through the
Celery task in a real worker, against the floor of reading the same ratings and computing one
alpha, measured in the same run.

    .venv/bin/python bench/quality_bench.py

Options: --database-url (default postgres://postgres@127.0.0.1:5432/rateloop_qbench_data; the
database is DROPPED and recreated unless --reuse, so its name must contain "bench"), --reuse
(keep the seeded rows; only the quality runs, drift flags and tested-window counts of earlier
runs are deleted),
--broker (default redis://127.0.0.1:6379/13; its queue is purged), --items, --seed, --rounds
(default 3), --no-time-v (skip the second measurement), --profile (run the second measurement
under cProfile instead of /usr/bin/time and print the top functions).

What it does:
1. unless --reuse: drops, recreates and migrates the database (``manage.py migrate`` in a
   subprocess), then seeds it with COPY (bench/quality_seed.py: the project, 501 users and
   memberships, 200,000 conversations with a prompt and a response, 200,000 score items,
   a rubric with one 5-point Likert criterion, 900,000 judgments with one score each), then
   VACUUM ANALYZE and CHECKPOINT;
2. starts ``celery -A config worker --pool solo`` on the bench database and broker and waits
   until it is ready; then, --rounds times, interleaved so that both see the same machine load:
   - the floor, in a fresh process: ``COPY (SELECT item, rater, value of the project's current
     scores) TO STDOUT (FORMAT binary)`` decoded into numpy arrays, then Krippendorff's
     interval alpha from the ``krippendorff`` package (on the items x values count matrix,
     the package's ``value_counts`` input);
   - the full run: deletes earlier quality runs and drift flags of the project and the runs'
     cache of judgments (bench/out/quality-cache, so the run reads every judgment), calls
     ``quality_refresh.delay(project_id, "bench")`` and polls the QualityRun row every 50 ms.
     "full s" runs from ``.delay()`` to the row seen as succeeded; the phases are the run's
     own ``timings``;
   then the incremental run: 1% of the judgments get a new version with the same answer (as
   an edit does; this grows the database a little on every run of the script), and one more
   run, which keeps the cache of the last full run and reads only the new versions;
   the worker's peak RSS is VmHWM from /proc/<pid>/status after the last run (start-up
   and every run included);
3. the second measurement: the same task function (``quality_refresh(project_id, ...)``,
   called directly) in a fresh process under ``/usr/bin/time -v`` (wall and maximum RSS of
   the whole process, interpreter and Django start-up included);
4. drift: which raters the last worker run (the incremental one) flagged, per seeded character (recall among the
   drifting raters, false flags among the steady and lenient ones).

Goals (from the issue): full run within 5x the floor (best full run against best floor) and
under 30 s, peak memory under 1.5 GB. The script prints whether each holds; it exits non-zero
only when a step fails.
"""

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from quality_seed import GROUPS, SLUG, START, Scenario, seed

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT = BENCH_DIR / "out"
CACHE_DIR = OUT / "quality-cache"


DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/rateloop_qbench_data"
DEFAULT_BROKER = "redis://127.0.0.1:6379/13"
FLOOR_SQL = (
    "SELECT j.item_id::int8, j.rater_id::int8, s.value::float8 FROM ratings_judgment j"
    " JOIN ratings_item i ON i.id = j.item_id JOIN ratings_score s ON s.judgment_id = j.id"
    " WHERE i.project_id = {pid} AND j.is_current AND s.value IS NOT NULL"
)
T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def child_env(database_url: str, broker: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=env.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        CELERY_BROKER_URL=broker,
        RATELOOP_QUALITY_CACHE_DIR=str(CACHE_DIR),
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


def migrate(database_url: str, broker: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "--skip-checks", "-v", "0"],
        cwd=ROOT,
        env=child_env(database_url, broker),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{result.stdout}{result.stderr}")


def vacuum(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def project_id(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT id FROM conversations_project WHERE slug = %s", (SLUG,)
        ).fetchone()
    if row is None:
        raise SystemExit(f"no project {SLUG!r} in this database: run without --reuse first")
    return int(row[0])


def counts(database_url: str, pid: int) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        judgments, raters = conn.execute(
            "SELECT count(*), count(DISTINCT j.rater_id) FROM ratings_judgment j"
            " JOIN ratings_item i ON i.id = j.item_id WHERE i.project_id = %s AND j.is_current",
            (pid,),
        ).fetchone()
        items = conn.execute(
            "SELECT count(*) FROM ratings_item WHERE project_id = %s", (pid,)
        ).fetchone()[0]
    return {"items": items, "judgments": judgments, "raters": raters}


def clear_runs(database_url: str, pid: int) -> None:
    """Forget earlier quality runs and flags, so that the next run computes from scratch."""
    with psycopg.connect(database_url) as conn:
        for table in ("ratings_agreementsnapshot", "ratings_raterquality"):
            conn.execute(
                f"DELETE FROM {table} WHERE run_id IN"
                " (SELECT id FROM ratings_qualityrun WHERE project_id = %s)",
                (pid,),
            )
        conn.execute("DELETE FROM ratings_driftflag WHERE project_id = %s", (pid,))
        # the windows tested by earlier runs: without this a full run would test none again
        conn.execute("DELETE FROM ratings_driftcursor WHERE project_id = %s", (pid,))
        conn.execute("DELETE FROM ratings_qualityrun WHERE project_id = %s", (pid,))


EDIT_SHARE = 0.01


def edit_judgments(database_url: str, pid: int, share: float) -> int:
    """Give about ``share`` of the project's current judgments (drawn at random) a new version
    with the same answer, one second later, as the rating page's edit does (old version kept,
    no longer current):
    new judgment rows and replaced ones, for the incremental run."""
    with psycopg.connect(database_url) as conn:
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'ratings_judgment' AND column_name <> 'id'"
                " ORDER BY ordinal_position"
            )
        ]
        changed = {
            "version": "version + 1",
            "is_current": "true",
            "created_at": "created_at + interval '1 second'",
        }
        select = ", ".join(changed.get(c, c) for c in cols)
        conn.execute(
            "CREATE TEMP TABLE picked AS SELECT j.id FROM ratings_judgment j"
            " JOIN ratings_item i ON i.id = j.item_id"
            " WHERE i.project_id = %s AND j.is_current AND random() < %s",
            (pid, share),
        )
        conn.execute(
            "UPDATE ratings_judgment SET is_current = false WHERE id IN (SELECT id FROM picked)"
        )
        conn.execute(
            f"CREATE TEMP TABLE fresh AS WITH ins AS (INSERT INTO ratings_judgment"
            f" ({', '.join(cols)}) SELECT {select} FROM ratings_judgment"
            f" WHERE id IN (SELECT id FROM picked) ORDER BY id"
            f" RETURNING id, item_id, rater_id) SELECT * FROM ins"
        )
        conn.execute(
            "INSERT INTO ratings_score (judgment_id, criterion_id, value, choices, text)"
            " SELECT f.id, s.criterion_id, s.value, s.choices, s.text FROM fresh f"
            " JOIN ratings_judgment o ON o.item_id = f.item_id AND o.rater_id = f.rater_id"
            " AND o.id IN (SELECT id FROM picked) JOIN ratings_score s ON s.judgment_id = o.id"
        )
        return conn.execute("SELECT count(*) FROM fresh").fetchone()[0]


# --------------------------------------------------------------------------------------------
# Floor
# --------------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a live process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0])
    return out


def floor_child(database_url: str, pid: int) -> None:
    """In a fresh process: COPY binary -> numpy arrays -> one alpha; print a JSON line."""
    import krippendorff
    import numpy as np

    started = time.perf_counter()
    buffer = bytearray()
    with (
        psycopg.connect(database_url) as conn,
        conn.cursor().copy(f"COPY ({FLOOR_SQL.format(pid=pid)}) TO STDOUT (FORMAT binary)") as cp,
    ):
        for block in cp:
            buffer += block
    copied = time.perf_counter()
    # Binary COPY: 19-byte header, then per row a field count (int16) and, per field, a length
    # (int32) and the value (big-endian int8, int8, float8); a 2-byte trailer.
    row = np.dtype(
        [
            ("n", ">i2"),
            ("l1", ">i4"),
            ("item", ">i8"),
            ("l2", ">i4"),
            ("rater", ">i8"),
            ("l3", ">i4"),
            ("value", ">f8"),
        ]
    )
    rows = np.frombuffer(buffer, dtype=row, offset=19, count=(len(buffer) - 21) // row.itemsize)
    if not all((rows[f] == v).all() for f, v in (("n", 3), ("l1", 8), ("l2", 8), ("l3", 8))):
        raise RuntimeError("unexpected binary COPY layout")
    item = rows["item"].astype(np.int64)
    rater = rows["rater"].astype(np.int64)
    value = rows["value"].astype(np.float64)
    decoded = time.perf_counter()
    _, unit = np.unique(item, return_inverse=True)
    domain = np.arange(1, 6)
    value_counts = np.bincount(
        unit * domain.size + (value.astype(np.int64) - 1), minlength=(unit.max() + 1) * domain.size
    ).reshape(-1, domain.size)
    alpha = krippendorff.alpha(
        value_counts=value_counts, value_domain=domain, level_of_measurement="interval"
    )
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "rows": int(item.size),
                "raters": int(np.unique(rater).size),
                "copy_s": copied - started,
                "decode_s": decoded - copied,
                "alpha_s": done - decoded,
                "total_s": done - started,
                "alpha_interval": float(alpha),
                "peak_rss_mb": proc_status(os.getpid())["VmHWM"] / 1024,
            }
        )
    )


def measure_floor(database_url: str, broker: str, pid: int) -> dict:
    """One floor measurement in a fresh process. Its peak RSS is the child's own VmHWM: the
    rusage of a child started with vfork would report the parent's peak instead."""
    result = subprocess.run(
        [sys.executable, __file__, "--floor-child", str(pid), "--database-url", database_url],
        cwd=ROOT,
        env=child_env(database_url, broker),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the floor failed:\n{result.stderr[-3000:]}")
    floor = json.loads(result.stdout.strip().splitlines()[-1])
    log(
        f"floor: {floor['total_s']:.2f} s (COPY {floor['copy_s']:.2f}, "
        f"decode {floor['decode_s']:.2f}, alpha {floor['alpha_s']:.2f}), "
        f"{floor['rows']:,} rows, alpha {floor['alpha_interval']:.4f}, "
        f"peak RSS {floor['peak_rss_mb']:.0f} MB"
    )
    return floor


# --------------------------------------------------------------------------------------------
# Full run through the worker
# --------------------------------------------------------------------------------------------


class Worker:
    """``celery -A config worker --pool solo`` on the bench database, output drained."""

    def __init__(self, env: dict[str, str]):
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                "qbench@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if " ready." in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker did not start:\n" + "\n".join(self.lines[-30:]))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def setup_django(database_url: str, broker: str) -> None:
    os.environ.update(child_env(database_url, broker))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def run_task(worker: Worker, database_url: str, pid: int, *, incremental: bool = False) -> dict:
    """One quality run: ``quality_refresh.delay()``, then poll until the run finished. A full
    run starts without the run's cache of judgments (it reads everything); an incremental one
    keeps the cache the previous run left."""
    from ratings.models import QualityRun, RunState
    from ratings.tasks import quality_refresh

    clear_runs(database_url, pid)
    if not incremental:
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
    started_at = time.time()
    started = time.perf_counter()
    quality_refresh.delay(pid, "bench")
    while True:
        finished = QualityRun.objects.filter(
            project_id=pid, state__in=[RunState.SUCCEEDED, RunState.FAILED]
        ).first()
        if finished is not None:
            break
        if worker.proc.poll() is not None:
            raise RuntimeError("the worker died:\n" + "\n".join(worker.lines[-30:]))
        if time.perf_counter() - started > 900:
            raise RuntimeError("no finished quality run after 900 s")
        time.sleep(0.05)
    wall = time.perf_counter() - started
    if finished.state != RunState.SUCCEEDED:
        raise RuntimeError(f"the quality run failed: {finished.error}")
    result = {
        "run_id": finished.pk,
        "wall_s": wall,
        "until_finished_at_s": finished.finished_at.timestamp() - started_at,
        "duration_s": finished.duration_ms / 1000,
        "timings": finished.timings,
        "n_judgments": finished.n_judgments,
        "incremental": bool(finished.timings.get("load_incremental")),
    }
    log(
        f"worker run: wall {wall:.2f} s from .delay() (finished_at "
        f"{result['until_finished_at_s']:.2f} s, in-task {result['duration_s']:.2f} s); "
        f"timings {finished.timings}"
    )
    return result


def measure_rounds(
    database_url: str, broker: str, pid: int, rounds: int
) -> tuple[list, list, dict]:
    """``rounds`` x (floor in a fresh process, then one run in the worker), interleaved so that
    both see the same machine load; the worker is started once and its peak RSS read at the
    end (VmHWM covers every run)."""
    from config.celery import app

    app.control.purge()
    worker = Worker(child_env(database_url, broker))
    floors, fulls = [], []
    try:
        worker.wait_ready()
        idle = proc_status(worker.proc.pid)
        log(f"worker ready (pid {worker.proc.pid}, RSS {idle['VmRSS'] / 1024:.0f} MB idle)")
        for n in range(1, rounds + 1):
            log(f"round {n}/{rounds}")
            floors.append(measure_floor(database_url, broker, pid))
            fulls.append(run_task(worker, database_url, pid))
        edited = edit_judgments(database_url, pid, EDIT_SHARE)
        log(f"edited {edited:,} judgments ({EDIT_SHARE:.0%}): new versions, same values")
        incremental = run_task(worker, database_url, pid, incremental=True)
        incremental["edited"] = edited
        status = proc_status(worker.proc.pid)
    finally:
        worker.stop()
    memory = {"idle_rss_mb": idle["VmRSS"] / 1024, "peak_rss_mb": status["VmHWM"] / 1024}
    log(f"worker peak RSS {memory['peak_rss_mb']:.0f} MB ({memory['idle_rss_mb']:.0f} MB idle)")
    return floors, fulls, incremental, memory


def measure_time_v(database_url: str, broker: str, pid: int, profile: bool) -> dict:
    """The task function in a fresh process under /usr/bin/time -v (or cProfile)."""
    clear_runs(database_url, pid)
    shutil.rmtree(CACHE_DIR, ignore_errors=True)  # a full run
    env = child_env(database_url, broker)
    if profile:
        OUT.mkdir(exist_ok=True)
        path = OUT / "quality.prof"
        code = (
            "import cProfile, pstats, django; django.setup();"
            "from ratings.tasks import quality_refresh;"
            f"cProfile.run('quality_refresh({pid}, \"bench-profile\")', {str(path)!r});"
            f"pstats.Stats({str(path)!r}).sort_stats('cumulative').print_stats(40)"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
        )
        print(result.stdout[-12000:], file=sys.stderr)
        return {}
    code = (
        "import django; django.setup();"
        "from ratings.tasks import quality_refresh;"
        f"quality_refresh({pid}, 'bench-time')"
    )
    result = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the task function failed:\n{result.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    cpu = [
        float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", result.stderr)
    ]
    assert wall and rss
    hours, minutes, seconds = wall.groups()
    out = {
        "wall_s": int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds),
        "cpu_s": sum(cpu),
        "peak_rss_mb": int(rss.group(1)) / 1024,
    }
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT duration_ms, timings FROM ratings_qualityrun WHERE project_id = %s"
            " AND state = 'succeeded' ORDER BY id DESC LIMIT 1",
            (pid,),
        ).fetchone()
    out["duration_s"], out["timings"] = row[0] / 1000, row[1]
    log(
        f"/usr/bin/time -v: wall {out['wall_s']:.2f} s (process), in-task "
        f"{out['duration_s']:.2f} s, CPU {out['cpu_s']:.1f} s, max RSS {out['peak_rss_mb']:.0f} MB"
    )
    return out


# --------------------------------------------------------------------------------------------
# Drift and per-rater figures against the seeded characters
# --------------------------------------------------------------------------------------------


def drift_report(database_url: str, pid: int, run_id: int, scenario: Scenario) -> dict:
    with psycopg.connect(database_url) as conn:
        raters = dict(
            conn.execute(
                "SELECT u.id, split_part(u.username, '-', 1) FROM auth_user u"
                " JOIN conversations_membership m ON m.user_id = u.id"
                " WHERE m.project_id = %s AND m.role = 'evaluator'",
                (pid,),
            ).fetchall()
        )
        flags = conn.execute(
            "SELECT rater_id, detector, window_kind, window_start, window_end FROM ratings_driftflag"
            " WHERE project_id = %s AND run_id = %s",
            (pid, run_id),
        ).fetchall()
        quality = dict(
            conn.execute(
                "SELECT rater_id, agreement FROM ratings_raterquality WHERE run_id = %s", (run_id,)
            ).fetchall()
        )
    by_rater: dict[int, list] = {}
    for rater, detector, kind, window_start, window_end in flags:
        by_rater.setdefault(rater, []).append((detector, kind, window_start, window_end))
    onset = {"drop": scenario.drop_day, "random": scenario.random_day}
    groups: dict[str, dict] = {}
    for group in GROUPS:
        members = [r for r, g in raters.items() if g == group]
        flagged = sorted(r for r in members if r in by_rater)
        detectors: dict[str, int] = {}
        for r in flagged:
            for d in {f[0] for f in by_rater[r]}:
                detectors[d] = detectors.get(d, 0) + 1
        agreement = [quality[r] for r in members if quality.get(r) is not None]
        groups[group] = {
            "raters": len(members),
            "flagged": len(flagged),
            "detectors": detectors,
            "mean_agreement": sum(agreement) / len(agreement) if agreement else None,
        }
        if group in onset and flagged:
            # Detection time: the end of the earliest flagged window, in days since the start.
            first_end = [min(f[3] for f in by_rater[r]) for r in flagged]
            days = sorted((t - START).total_seconds() / 86_400 for t in first_end)
            groups[group]["detected_at_day"] = [round(d, 1) for d in days]
    drifting = groups["drop"]["raters"] + groups["random"]["raters"]
    found = groups["drop"]["flagged"] + groups["random"]["flagged"]
    steady = groups["steady"]["raters"] + groups["lenient"]["raters"]
    false = groups["steady"]["flagged"] + groups["lenient"]["flagged"]
    return {
        "groups": groups,
        "recall": found / drifting if drifting else None,
        "found": found,
        "drifting": drifting,
        "false_flags": false,
        "steady": steady,
        "flags": len(flags),
    }


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def report(
    data: dict,
    floors: list[dict],
    fulls: list[dict],
    incremental: dict,
    memory: dict,
    time_v: dict,
    drift: dict,
    goals: dict,
) -> str:
    floor = min(floors, key=lambda f: f["total_s"])
    full = min(fulls, key=lambda f: f["wall_s"])
    ratios = [b["wall_s"] / a["total_s"] for a, b in zip(floors, fulls, strict=True)]
    lines = [
        f"PostgreSQL {data['server']}; {os.cpu_count()} CPUs; Python {platform.python_version()}",
        f"data: {data['items']:,} items, {data['judgments']:,} current judgments (one Likert "
        f"score each) by {data['raters']} raters",
        "",
        f"{'round':>5} {'floor s':>8} {'full s':>8} {'ratio':>6}  full run phases (s)",
    ]
    for n, (a, b, r) in enumerate(zip(floors, fulls, ratios, strict=True), start=1):
        phases = " ".join(
            f"{k} {v:.2f}" for k, v in b["timings"].items() if k != "load_incremental"
        )
        lines.append(f"{n:>5} {a['total_s']:>8.2f} {b['wall_s']:>8.2f} {r:>5.2f}x  {phases}")
    lines += [
        "",
        f"floor (COPY binary -> numpy arrays + krippendorff.alpha, interval), best of "
        f"{len(floors)}: {floor['total_s']:.2f} s (COPY {floor['copy_s']:.2f}, decode "
        f"{floor['decode_s']:.2f}, alpha {floor['alpha_s']:.2f}); alpha "
        f"{floor['alpha_interval']:.4f}; peak RSS {floor['peak_rss_mb']:.0f} MB",
        f"full run through the Celery worker, best of {len(fulls)}: {full['wall_s']:.2f} s from "
        f".delay() to the run seen succeeded ({full['duration_s']:.2f} s inside the task)",
        f"every full run read all judgments: "
        f"{'yes' if not any(f['incremental'] for f in fulls) else 'NO'}",
        f"incremental run after editing {incremental['edited']:,} judgments: "
        f"{incremental['wall_s']:.2f} s from .delay() ("
        f"{'read only the new judgments' if incremental['incremental'] else 'read everything'}"
        f"); phases "
        + " ".join(
            f"{k} {v:.2f}" for k, v in incremental["timings"].items() if k != "load_incremental"
        ),
        f"worker peak RSS (VmHWM, all runs): {memory['peak_rss_mb']:.0f} MB "
        f"({memory['idle_rss_mb']:.0f} MB idle)",
    ]
    if time_v:
        lines += [
            f"task function in a fresh process under /usr/bin/time -v: wall "
            f"{time_v['wall_s']:.2f} s (start-up included; {time_v['duration_s']:.2f} s inside the "
            f"task), CPU {time_v['cpu_s']:.1f} s, max RSS {time_v['peak_rss_mb']:.0f} MB",
        ]
    lines += [
        f"ratio full / floor: best {full['wall_s'] / floor['total_s']:.2f}x, median of rounds "
        f"{_median(ratios):.2f}x",
        "goals: " + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in goals.items()),
        "",
        "drift (flags of the last run, per seeded character):",
        f"{'character':<9} {'raters':>6} {'flagged':>7} {'mean agr':>8}  detectors / detected at day",
    ]
    for group in ("drop", "random", "lenient", "steady"):
        g = drift["groups"][group]
        agreement = f"{g['mean_agreement']:.3f}" if g["mean_agreement"] is not None else "-"
        extra = ", ".join(f"{d} {n}" for d, n in sorted(g["detectors"].items()))
        if g.get("detected_at_day"):
            days = g["detected_at_day"]
            extra += f"; first flagged window ends on day {days[0]}-{days[-1]}"
        lines.append(f"{group:<9} {g['raters']:>6} {g['flagged']:>7} {agreement:>8}  {extra}")
    lines.append(
        f"recall {drift['found']}/{drift['drifting']} drifting raters; false flags "
        f"{drift['false_flags']}/{drift['steady']} steady or lenient raters; {drift['flags']} flags"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--broker", default=DEFAULT_BROKER)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--items", type=int, default=Scenario.items)
    parser.add_argument("--seed", type=int, default=Scenario.seed)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-time-v", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--floor-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_child is not None:
        floor_child(args.database_url, args.floor_child)
        return 0

    started = time.perf_counter()
    scenario = Scenario(items=args.items, seed=args.seed)
    log(scenario.describe())
    if not args.reuse:
        recreate_database(args.database_url)
        migrate(args.database_url, args.broker)
        log(f"recreated and migrated {conninfo_to_dict(args.database_url)['dbname']}")
        seeded = seed(args.database_url, scenario)
        vacuum(args.database_url)
        log(f"seeded {seeded} and vacuumed in {time.perf_counter() - started:.1f} s")
    pid = project_id(args.database_url)
    data = counts(args.database_url, pid)
    with psycopg.connect(args.database_url) as conn:
        data["server"] = conn.execute("SHOW server_version").fetchone()[0]
    setup_django(args.database_url, args.broker)
    floors, fulls, incremental, memory = measure_rounds(
        args.database_url, args.broker, pid, args.rounds
    )
    # the flags of the last run (the incremental one: each run starts by deleting the flags)
    drift = drift_report(args.database_url, pid, incremental["run_id"], scenario)
    time_v = {}
    if not args.no_time_v or args.profile:
        time_v = measure_time_v(args.database_url, args.broker, pid, args.profile)
    best_floor = min(f["total_s"] for f in floors)
    best_full = min(f["wall_s"] for f in fulls)
    peak = max(memory["peak_rss_mb"], time_v.get("peak_rss_mb", 0.0))
    goals = {
        "within 5x floor (best vs best)": best_full <= 5 * best_floor,
        "under 30 s": best_full < 30,
        "peak < 1.5 GB": peak < 1536,
    }
    print(report(data, floors, fulls, incremental, memory, time_v, drift, goals))
    log(f"total {time.perf_counter() - started:.0f} s")
    OUT.mkdir(exist_ok=True)
    (OUT / "quality-bench.json").write_text(
        json.dumps(
            {
                "data": data,
                "floors": floors,
                "fulls": fulls,
                "incremental": incremental,
                "memory": memory,
                "time_v": time_v,
                "drift": drift,
            },
            indent=2,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
