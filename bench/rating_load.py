"""Rating under load: concurrent raters doing ``next`` then ``submit`` over HTTP against the
service run by gunicorn on PostgreSQL, with a trivial authenticated endpoint measured in the
same run as the reference.

    .venv/bin/python bench/rating_load.py --raters 32 --warmup 10 --duration 60
    .venv/bin/python bench/rating_load.py --reuse --warmup 5 --duration 40 --rate 160

Options: --database-url (default postgres://postgres@127.0.0.1:5432/rateloop_load_bench; it
is DROPPED and recreated unless --reuse, so its name must contain "bench"), --pairs (default
100000), --overlap (3), --reuse (keep a database seeded by an earlier run: only the
assignments and judgments of earlier runs are deleted), --rate R (raters think between
ratings so that R ratings/s are offered in all; default 0: no think time), --think-ms T (each
rater reads a task for a uniformly drawn 0.5 T to 1.5 T ms between receiving it and
submitting; default 0), --client lean|httpx (the generator's HTTP client; default lean), --workers,
--threads, --worker-class and --keep-alive (gunicorn; default 2 gthread workers x 4 threads,
keep-alive 10 s), --port, --reference-seconds (default 10), --seed, --keep-statistics (do
not ANALYZE the written tables at the end of the warm-up, see step 4).

What it does:
1. seeds the project with bench/seed_rating_project.py (the application's own services:
   ``transcript_import`` of one pair per conversation, then ``items_queue``), or with
   --reuse applies migrations added since and deletes the assignments and judgments of
   earlier runs; then VACUUM ANALYZE;
2. starts ``gunicorn -c config/gunicorn.conf.py config.wsgi:application`` in production
   mode (DJANGO_DEBUG=0, persistent database connections as configured) and waits until it
   answers;
3. reference: ``GET /api/v1/projects/`` (token authentication, one project, three SQL
   queries: the smallest authenticated API call), first by one client, then by as many
   concurrent clients as there are raters, for --reference-seconds each after a 2 s
   warm-up. This is the floor of what any API call costs on this machine, through the same
   gunicorn;
4. load: each rater (its own token) loops ``POST /api/v1/projects/<slug>/next/``
   ``{"kind": "pairwise"}`` then ``POST /api/v1/assignments/<id>/submit/`` with a random
   choice. By default with no think time: a closed loop whose figures are the service's
   capacity (and whose latencies are then set by Little's law: raters / throughput), not a
   simulation of human pace. At the end of the warm-up the tables the raters write are
   analyzed (``refresh_statistics``: the reset empties them, which a running service's never
   are). Latencies and ratings count from the end of the warm-up for
   --duration seconds; then each rater finishes the rating it holds and stops. One asyncio
   event loop drives all raters, each with its own keep-alive connection. The default client
   is a lean HTTP/1.1 client on asyncio streams (``Http11Connection``), which costs the
   generator a fraction of httpx's CPU per call, CPU the server shares; ``--client httpx``
   runs the same calls through httpx;
5. CPU during each measured window, read from /proc: the load generator itself, the
   gunicorn processes, the PostgreSQL backends of this database (with those that exited in
   the window, as gunicorn's connections are renewed after CONN_MAX_AGE, from the
   postmaster's time of exited children), and the whole machine (what is left is other work
   on the machine, which is reported); from the CPU cost of a
   rating, the rate the machine could sustain if the benchmark had it alone;
6. checks in the database: items with more judgments than their overlap (must be 0),
   (item, rater) pairs judged twice (must be 0), judgments = successful submits, submitted
   assignments = judgments, items' n_done sum = judgments, no lease left;
7. stops gunicorn.

How the issue's goal (32 raters, at least 150 ratings/s, p95 of next and of submit under
50 ms) is judged: with ``--rate 160``, an open loop. Each of the 32 raters starts a rating at
exponentially spaced times that offer 160 ratings/s in all, whatever the service's latency
(a rater that falls behind starts its next rating at once), so the run shows whether the
service keeps up with that rate and what its latencies are at it; the last line before the
CPU table says whether the goal held. Two other modes are kept for what they show: no
think time (a closed loop: the service's capacity, with latencies set by Little's law:
32 / throughput) and ``--think-ms 180`` (a closed loop whose throughput can never pass
32 / (0.18 s + the mean latencies of both calls), about 163 ratings/s, so that there
throughput and latency are one figure).

Latencies are measured by the client (request sent to response read), so they include the
generator's own scheduling delay. It exits non-zero when a check fails or a call gets an
HTTP error; connections closed by the server are counted and reported. It does not enforce
the latency or throughput goals (it is a benchmark, not a test).
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict
from seed_rating_project import DEFAULT_URL, child_env

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


CHOICES = ("left_much_better", "left_better", "tie", "right_better", "right_much_better")
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOAL_RATE = 150  # ratings/s, and the p95 of each call, from the issue
GOAL_P95_MS = 50
T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- measurements -----------------------------------------------------------------------------


@dataclass
class Window:
    """Requests that start inside [start, end) are measured; None until the warm-up ends."""

    start: float | None = None
    end: float | None = None
    stop: bool = False
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    completed: Counter = field(default_factory=Counter)

    def record(self, call: str, started: float, finished: float, status: int, ok: bool) -> None:
        if self.start is None or not self.start <= started < self.end:
            return
        self.latencies.setdefault(call, []).append(finished - started)
        self.statuses[call, status] += 1
        if ok and finished < self.end:
            self.completed[call] += 1


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def latency_row(name: str, values: list[float], seconds: float) -> str:
    v = sorted(values)
    ms = [1000 * percentile(v, p) for p in (50, 95, 99)]
    mean = 1000 * sum(v) / len(v) if v else float("nan")
    top = 1000 * v[-1] if v else float("nan")
    return (
        f"{name:<34}{len(v):>8,}{len(v) / seconds:>9.1f}"
        f"{ms[0]:>9.1f}{ms[1]:>9.1f}{ms[2]:>9.1f}{mean:>9.1f}{top:>9.1f}"
    )


LATENCY_HEADER = (
    f"{'call':<34}{'requests':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    f"{'mean ms':>9}{'max ms':>9}"
)


def _proc_cpu(pid: str, children: bool = False) -> float | None:
    """CPU seconds (user + system) of one process, or of its children that have exited
    (``children``), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    at = 13 if children else 11
    return (int(fields[at]) + int(fields[at + 1])) / CLK_TCK


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def cpu_snapshot(gunicorn_pid: int, dbname: str) -> dict:
    """CPU seconds so far per process group, and the machine's busy and total seconds."""
    groups = {"gunicorn": {}, "postgres": {}}
    postmasters: set[str] = set()
    marker = f" {dbname} ".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        stat = _read(f"/proc/{pid}/stat")
        if not stat:
            continue
        head, _, rest = stat.rpartition(b")")
        comm, ppid = head.split(b"(", 1)[1], int(rest.split()[1])
        if int(pid) == gunicorn_pid or ppid == gunicorn_pid:
            groups["gunicorn"][pid] = _proc_cpu(pid) or 0.0
        elif comm == b"postgres" and marker in _read(f"/proc/{pid}/cmdline").replace(b"\0", b" "):
            groups["postgres"][pid] = _proc_cpu(pid) or 0.0
            postmasters.add(str(ppid))
    cpu = _read("/proc/stat").split(b"\n", 1)[0].split()[1:]
    jiffies = [int(x) for x in cpu]
    idle = jiffies[3] + jiffies[4]  # idle + iowait
    total = sum(jiffies[:8])  # guest time is already counted in user
    t = os.times()
    return {
        "groups": groups,
        # backends that exited (the service reconnects after CONN_MAX_AGE) leave their CPU
        # time to the postmaster's children's time
        "exited": {pid: _proc_cpu(pid, children=True) or 0.0 for pid in postmasters},
        "machine_busy": (total - idle) / CLK_TCK,
        "machine_total": total / CLK_TCK,
        "generator": t.user + t.system,
        "wall": time.perf_counter(),
    }


def machine_busy(seconds: float) -> float:
    """Share of the machine's CPU time that was busy over the next ``seconds``."""

    def sample() -> tuple[int, int]:
        jiffies = [int(x) for x in _read("/proc/stat").split(b"\n", 1)[0].split()[1:9]]
        return sum(jiffies) - jiffies[3] - jiffies[4], sum(jiffies)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds used between two snapshots, per group, and the machine's busy and total."""
    used = {"generator": after["generator"] - before["generator"]}
    for group in ("gunicorn", "postgres"):
        used[group] = sum(
            cpu - before["groups"][group].get(pid, 0.0)
            for pid, cpu in after["groups"][group].items()
        )
    # backends that exited in the window: their whole time, from the postmaster's children's
    # time (of any database: the machine runs nothing else meanwhile), less what they had used
    # before the window
    used["postgres"] += sum(
        cpu - before["exited"].get(pid, cpu) for pid, cpu in after["exited"].items()
    ) - sum(
        cpu
        for pid, cpu in before["groups"]["postgres"].items()
        if pid not in after["groups"]["postgres"]
    )
    busy = after["machine_busy"] - before["machine_busy"]
    used["other"] = busy - sum(used.values())
    used["busy"] = busy
    used["total"] = after["machine_total"] - before["machine_total"]
    used["wall"] = after["wall"] - before["wall"]
    return used


def cpu_report(used: dict[str, float], units: int, unit: str) -> list[str]:
    wall, cores = used["wall"], os.cpu_count() or 1
    lines = [f"  {'':<44}{'CPU s':>8}{'% of a core':>13}{'% of machine':>14}{f'ms per {unit}':>16}"]
    for key, name in (
        ("generator", "load generator (this process)"),
        ("gunicorn", "gunicorn (master and workers)"),
        ("postgres", "PostgreSQL backends of the benchmark database"),
        ("other", "everything else (other processes, kernel)"),
        ("busy", f"machine busy ({cores} CPUs, {wall:.1f} s)"),
    ):
        seconds = used[key]
        lines.append(
            f"  {name:<44}{seconds:>8.1f}{100 * seconds / wall:>12.0f}%"
            f"{100 * seconds / wall / cores:>13.0f}%{1000 * seconds / max(1, units):>16.2f}"
        )
    return lines


def capacity(used: dict[str, float], units: int) -> float:
    """Units per second that the machine's CPUs could serve if the benchmark had them alone:
    the CPU cost of one unit in gunicorn, PostgreSQL and the generator, over all CPUs."""
    cost = (used["generator"] + used["gunicorn"] + used["postgres"]) / max(1, units)
    return (os.cpu_count() or 1) / cost if cost else float("nan")


# --- the load ---------------------------------------------------------------------------------


class Http11Connection:
    """A lean HTTP/1.1 client: one keep-alive connection on asyncio streams, one request at a
    time, JSON bodies. It makes the same calls as httpx did (method, path, token, JSON body;
    httpx also sent Accept, Accept-Encoding and User-Agent headers, which change nothing for
    these calls) and reads the status line, the headers and a Content-Length or chunked body.
    It does what the load needs and nothing else, so that the generator takes less of the
    CPUs it shares with the server. A connection that failed or that the server closed is
    opened again on the next request."""

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.head = f"Host: {host}:{port}\r\nAuthorization: Token {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        """(status, body); raises OSError (a timeout is one) or asyncio.IncompleteReadError
        when the connection fails, after closing it."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._request(method, path, body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await self.aclose()
            raise

    async def _request(self, method: str, path: str, body: dict | None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\n{self.head}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self.writer.write(head.encode("latin-1") + b"\r\n" + payload)
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            content = b""
            while size := int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16):
                content += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            content = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            await self.aclose()
        return status, content

    async def aclose(self) -> None:
        if self.writer is not None:
            writer, self.reader, self.writer = self.writer, None, None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> "Http11Connection":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class HttpxConnection:
    """The same interface on httpx (``--client httpx``), to compare the two generators."""

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Token {token}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=httpx.Timeout(timeout),
        )

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        try:
            r = await self.client.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise OSError(str(exc)) from exc
        return r.status_code, r.content

    async def __aenter__(self) -> "HttpxConnection":
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.__aexit__(*exc)


CLIENTS = {"lean": Http11Connection, "httpx": HttpxConnection}


async def call(client, method: str, url: str, body: dict | None = None):
    """One request: (status, body, started, finished); status 0 when the connection failed
    (reset or closed by the server), which is counted as a failed call."""
    started = time.perf_counter()
    try:
        status, content = await client.request(method, url, body)
    except (OSError, asyncio.IncompleteReadError):
        return 0, b"", started, time.perf_counter()
    return status, content, started, time.perf_counter()


async def rater_loop(
    client, slug: str, window: Window, rng: random.Random, period: float, think: float
) -> dict:
    """next, then submit, until told to stop; a rater that holds a lease when told to stop
    submits it first. After a submit whose connection failed (outcome unknown) the next
    ``next`` returns the same lease if the submit did not get through. With ``period`` > 0
    the rater waits between ratings so that a rating starts every ``period`` seconds on
    average (exponential gaps), unless the service is slower than that. With ``think`` > 0
    the rater reads the task for a uniformly drawn 0.5 to 1.5 times ``think`` seconds between
    receiving it and submitting (not counted in either call's latency)."""
    done = {"submitted": 0, "exhausted": False, "http_errors": 0, "reset_next": 0, "unknown": 0}
    next_url = f"/api/v1/projects/{slug}/next/"
    holding = False
    cycle = time.perf_counter()
    while holding or not window.stop:
        if period and not holding:
            cycle += rng.expovariate(1 / period)
            await asyncio.sleep(max(0.0, cycle - time.perf_counter()))
            cycle = max(cycle, time.perf_counter())
            if window.stop:
                break
        status, content, started, finished = await call(
            client, "POST", next_url, {"kind": "pairwise"}
        )
        window.record("next", started, finished, status, status == 200)
        if status == 204:
            done["exhausted"] = True
            break
        if status != 200:
            done["http_errors" if status else "reset_next"] += 1
            await asyncio.sleep(0.05)
            continue
        holding = True
        if think:
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))
        body = {"choice": rng.choice(CHOICES), "time_on_task_ms": rng.randint(3000, 90000)}
        url = f"/api/v1/assignments/{json.loads(content)['assignment_id']}/submit/"
        status, content, started, finished = await call(client, "POST", url, body)
        window.record("submit", started, finished, status, status == 201)
        if status == 201:
            done["submitted"] += 1
            holding = False
        else:
            done["http_errors" if status else "unknown"] += 1
            holding = status == 0
            await asyncio.sleep(0.05)
    return done


async def reference_loop(client, window: Window) -> None:
    while not window.stop:
        status, content, started, finished = await call(client, "GET", "/api/v1/projects/")
        window.record("GET /api/v1/projects/", started, finished, status, status == 200)
        if status not in (0, 200):
            raise RuntimeError(f"reference call answered {status}: {content[:300]!r}")


async def timed(window: Window, tasks: list, warmup: float, seconds: float, cpu, after_warmup=None):
    """Run ``tasks``: warm up, call ``after_warmup`` (in a thread) if given, measure for
    ``seconds``, then ask them to stop and wait for them. Return their results and the CPU
    used in the measured window."""
    running = [asyncio.ensure_future(t) for t in tasks]
    await asyncio.sleep(warmup)
    if after_warmup is not None:
        await asyncio.to_thread(after_warmup)
    before = cpu()
    window.start = time.perf_counter()
    window.end = window.start + seconds
    await asyncio.sleep(seconds)
    after = cpu()
    window.stop = True
    return await asyncio.gather(*running), cpu_used(before, after)


def clients_for(base_url: str, tokens: list[str], kind: str = "lean") -> list:
    """One client, i.e. one keep-alive connection, per rater. (With httpx, a single client
    with a pool of N connections cost the generator about four times more CPU per request
    than one client per rater: the pool's bookkeeping grows with its size.)"""
    return [CLIENTS[kind](base_url, token) for token in tokens]


async def run_reference(
    base_url: str, tokens: list[str], seconds: float, cpu, kind: str
) -> list[str]:
    lines = []
    for concurrency in (1, len(tokens)):
        window = Window()
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(c)
                for c in clients_for(base_url, tokens[:concurrency], kind)
            ]
            _, used = await timed(
                window, [reference_loop(c, window) for c in clients], 2.0, seconds, cpu
            )
        values = window.latencies["GET /api/v1/projects/"]
        per = {
            k: 1000 * used[k] / max(1, len(values)) for k in ("generator", "gunicorn", "postgres")
        }
        lines.append(
            latency_row(f"{concurrency} client(s)", values, seconds)
            + f"{per['generator']:>8.2f}{per['gunicorn']:>9.2f}{per['postgres']:>7.2f}"
            + f"{100 * used['other'] / used['total']:>7.0f}%"
        )
        failed = sum(n for (_, status), n in window.statuses.items() if status != 200)
        if failed:
            lines[-1] += f"  ({failed} failed)"
        log(f"reference with {concurrency} client(s): {len(values) / seconds:.0f} req/s")
    return lines


async def run_load(
    base_url: str,
    tokens: list[str],
    slug: str,
    warmup: float,
    seconds: float,
    seed: int,
    period: float,
    think: float,
    cpu,
    kind: str,
    after_warmup=None,
) -> tuple[Window, list[dict], dict]:
    window = Window()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(c) for c in clients_for(base_url, tokens, kind)]
        loops = [
            rater_loop(client, slug, window, random.Random(seed * 1000 + i), period, think)
            for i, client in enumerate(clients)
        ]
        results, used = await timed(window, loops, warmup, seconds, cpu, after_warmup)
    return window, results, used


def refresh_statistics(database_url: str) -> None:
    """ANALYZE the tables the raters write. The reset leaves them empty, and the rating
    path's prepared statements (and PostgreSQL's foreign-key checks) keep, per connection,
    the plans made while a table looked empty: sequential scans, which read the whole growing
    table on every call until autovacuum analyzes it (after 10% growth, at most once a
    minute). A running service's tables are not empty; this gives the measured window the
    plans such a service has."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE ratings_assignment, ratings_judgment, ratings_score")


# --- server, database -------------------------------------------------------------------------


def start_gunicorn(args, database_url: str) -> subprocess.Popen:
    cmd = [
        str(Path(sys.executable).with_name("gunicorn")),
        "config.wsgi:application",
        # the production settings (config/gunicorn.conf.py); the options below override
        # its worker counts and keep-alive
        "--config",
        "config/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{args.port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--keep-alive",
        str(args.keep_alive),
        "--log-level",
        "warning",
    ]
    log("starting " + " ".join(["gunicorn", *cmd[1:]]))
    return subprocess.Popen(cmd, cwd=ROOT, env=child_env(database_url), start_new_session=True)


def wait_ready(base_url: str, token: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            r = httpx.get(
                f"{base_url}/api/v1/projects/", headers={"Authorization": f"Token {token}"}
            )
            if r.status_code == 200:
                return
            raise RuntimeError(f"gunicorn answered {r.status_code}: {r.text[:300]}")
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer in time")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tokens_of(database_url: str, raters: int) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT t.key FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id"
            " WHERE u.username LIKE 'rater%%' ORDER BY u.username"
        ).fetchall()
    if len(rows) < raters:
        raise SystemExit(f"the database has {len(rows)} raters, {raters} wanted: seed it again")
    return [key for (key,) in rows[:raters]]


CHECKS = {
    "items with more current judgments than their overlap": """
        SELECT count(*) FROM (
            SELECT j.item_id FROM ratings_judgment j JOIN ratings_item i ON i.id = j.item_id
            WHERE i.project_id = %(p)s AND j.is_current
            GROUP BY j.item_id, i.overlap HAVING count(*) > i.overlap) t""",
    "(item, rater) pairs with more than one judgment": """
        SELECT count(*) FROM (
            SELECT j.item_id, j.rater_id FROM ratings_judgment j
            JOIN ratings_item i ON i.id = j.item_id WHERE i.project_id = %(p)s
            GROUP BY j.item_id, j.rater_id HAVING count(*) > 1) t""",
    "items whose n_active or n_done exceeds the overlap": """
        SELECT count(*) FROM ratings_item
        WHERE project_id = %(p)s AND (n_active > overlap OR n_done > overlap)""",
    "leases left (every rater submits what it holds)": """
        SELECT count(*) FROM ratings_assignment WHERE project_id = %(p)s AND state = 'leased'""",
}
COUNTS = {
    "judgments": """SELECT count(*) FROM ratings_judgment j JOIN ratings_item i
        ON i.id = j.item_id WHERE i.project_id = %(p)s""",
    "submitted assignments": """SELECT count(*) FROM ratings_assignment
        WHERE project_id = %(p)s AND state = 'submitted'""",
    "sum of items' n_done": "SELECT coalesce(sum(n_done), 0) FROM ratings_item WHERE project_id = %(p)s",
    "items with 3 judgments": "SELECT count(*) FROM ratings_item WHERE project_id = %(p)s AND n_done >= overlap",
    "items with 1 or 2 judgments": """SELECT count(*) FROM ratings_item
        WHERE project_id = %(p)s AND n_done > 0 AND n_done < overlap""",
}


def check_database(
    database_url: str, slug: str, submitted: int, unknown: int
) -> tuple[list[str], bool]:
    """The invariants, and the counts that must equal the successful submits (give or take
    the submits whose connection failed: those may or may not have been stored)."""
    lines, ok = [], True
    with psycopg.connect(database_url) as conn:
        (project,) = conn.execute(
            "SELECT id FROM conversations_project WHERE slug = %s", (slug,)
        ).fetchone()
        for label, query in CHECKS.items():
            (n,) = conn.execute(query, {"p": project}).fetchone()
            ok &= n == 0
            lines.append(f"  {label:<56}{n:>8,}  {'ok' if n == 0 else 'FAILED'}")
        counts = {
            label: conn.execute(query, {"p": project}).fetchone()[0]
            for label, query in COUNTS.items()
        }
    lines.append(f"  {'successful submits (HTTP 201), whole run':<56}{submitted:>8,}")
    if unknown:
        lines.append(f"  {'submits whose connection failed (outcome unknown)':<56}{unknown:>8,}")
    for label, n in counts.items():
        same = label not in ("items with 3 judgments", "items with 1 or 2 judgments")
        good = submitted <= n <= submitted + unknown
        ok &= not same or good
        verdict = ("ok" if good else "FAILED") if same else ""
        lines.append(f"  {label:<56}{n:>8,}  {verdict}".rstrip())
    return lines, ok


def describe_machine(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        (version,) = conn.execute("SHOW server_version").fetchone()
    return (
        f"PostgreSQL {version.split()[0]}; {os.cpu_count()} CPUs; Python "
        f"{platform.python_version()}"
    )


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--raters", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--reference-seconds", type=float, default=10.0)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--keep-statistics", action="store_true")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--think-ms", type=float, default=0.0)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="lean")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--keep-alive", type=int, default=10)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    slug = "load"
    dbname = conninfo_to_dict(args.database_url)["dbname"]

    seed_cmd = [sys.executable, str(BENCH_DIR / "seed_rating_project.py")]
    seed_cmd += ["--database-url", args.database_url, "--slug", slug]
    if args.reuse:
        seed_cmd += ["--reset-only"]
    else:
        seed_cmd += ["--pairs", str(args.pairs), "--raters", str(args.raters)]
        seed_cmd += ["--overlap", str(args.overlap), "--seed", str(args.seed)]
    log(("resetting" if args.reuse else "seeding") + f" {dbname}")
    started = time.perf_counter()
    seeded = subprocess.run(seed_cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    items = json.loads(seeded.stdout.strip().splitlines()[-1])["items"]
    log(f"database ready in {time.perf_counter() - started:.0f} s: {items:,} pairwise items")
    tokens = tokens_of(args.database_url, args.raters)
    base_url = f"http://127.0.0.1:{args.port}"

    idle_busy = machine_busy(3.0)
    log(f"machine busy before the run (nothing of ours running): {100 * idle_busy:.0f}%")
    proc = start_gunicorn(args, args.database_url)

    def cpu() -> dict:
        return cpu_snapshot(proc.pid, dbname)

    try:
        wait_ready(base_url, tokens[0], proc)
        log("gunicorn answers; reference calls")
        reference = asyncio.run(
            run_reference(base_url, tokens, args.reference_seconds, cpu, args.client)
        )
        log(f"rating load: {args.raters} raters, warm-up {args.warmup:g} s, {args.duration:g} s")

        window, results, used = asyncio.run(
            run_load(
                base_url,
                tokens,
                slug,
                args.warmup,
                args.duration,
                args.seed,
                args.raters / args.rate if args.rate else 0.0,
                args.think_ms / 1000,
                cpu,
                args.client,
                None if args.keep_statistics else lambda: refresh_statistics(args.database_url),
            )
        )
        log("raters stopped; checking the database")
    finally:
        stop_gunicorn(proc)
    submitted = sum(r["submitted"] for r in results)
    unknown = sum(r["unknown"] for r in results)
    checks, ok = check_database(args.database_url, slug, submitted, unknown)

    server = (
        f"gunicorn {args.workers} workers x {args.threads} threads ({args.worker_class}), "
        f"keep-alive {args.keep_alive} s, thread switch interval "
        f"{os.environ.get('RATELOOP_GIL_SWITCH_INTERVAL_MS', '0.5')} ms "
        "(config/gunicorn.conf.py), DJANGO_DEBUG=0, persistent database connections"
    )
    print(describe_machine(args.database_url))
    print(f"server: {server}")
    print(
        "load generator: "
        + (
            f"httpx {httpx.__version__}"
            if args.client == "httpx"
            else "HTTP/1.1 on asyncio streams (--client lean)"
        )
        + ", one keep-alive connection per rater"
    )
    print(f"other load: the machine was {100 * idle_busy:.0f}% busy in the 3 s before the run")
    print(
        f"project: {items:,} pairwise items, overlap {args.overlap}; {args.raters} raters, "
        + (
            f"thinking between ratings to offer {args.rate:g} ratings/s in all"
            if args.rate
            else f"{args.think_ms:g} ms think time (0.5-1.5x) between a task and its submit"
            if args.think_ms
            else "no think time"
        )
        + f"; warm-up {args.warmup:g} s, measured {args.duration:g} s"
        + (
            ""
            if args.keep_statistics
            else " (the written tables analyzed at the end of the warm-up)"
        )
    )
    print()
    print(f"reference: GET /api/v1/projects/ (token auth), {args.reference_seconds:g} s each")
    print(LATENCY_HEADER + f"{'gen':>8}{'gunicorn':>9}{'pg':>7}{'other':>8}")
    print("\n".join(reference))
    print(
        "(gen, gunicorn, pg: CPU ms per request in the load generator, gunicorn and PostgreSQL; "
        "other: share of the machine busy with other work)"
    )
    print()
    ratings = window.completed["submit"]
    print(
        f"rating: {ratings:,} ratings in {args.duration:g} s = {ratings / args.duration:.1f} ratings/s"
    )
    print(LATENCY_HEADER)
    for call in ("next", "submit"):
        print(latency_row(f"POST {call}", window.latencies.get(call, []), args.duration))
    bad = [
        f"{call} {status or 'connection failed'}: {n}"
        for (call, status), n in sorted(window.statuses.items())
        if status not in (200, 201)
    ]
    print(f"failed calls in the window: {', '.join(bad) or 'none'}")
    print(goal_line(ratings / args.duration, window.latencies))
    exhausted = sum(r["exhausted"] for r in results)
    errors = sum(r["http_errors"] for r in results)
    resets = sum(r["reset_next"] for r in results)
    print(
        f"whole run: raters that ran out of items {exhausted}; HTTP errors {errors}; "
        f"connections closed or reset by the server: {resets} next, {unknown} submit"
    )
    print()
    print("CPU during the measured window:")
    print("\n".join(cpu_report(used, ratings, "rating")))
    print(
        f"  capacity if the benchmark had the {os.cpu_count()} CPUs alone (CPU per rating of "
        f"generator + gunicorn + PostgreSQL): {capacity(used, ratings):.0f} ratings/s"
    )
    print()
    print("database checks after the run:")
    print("\n".join(checks))
    return 0 if ok and not errors else 1  # connection failures are reported, not fatal


def goal_line(rate: float, latencies: dict[str, list[float]]) -> str:
    """The issue's goal against this run: at least 150 ratings/s, p95 of next and of submit
    under 50 ms (latencies in seconds)."""
    p95 = {
        call: percentile(sorted(latencies.get(call, [])), 95) * 1000 for call in ("next", "submit")
    }
    met = rate >= GOAL_RATE and all(v < GOAL_P95_MS for v in p95.values())
    return (
        f"goal (>= {GOAL_RATE} ratings/s, p95 of next and submit < {GOAL_P95_MS} ms): "
        f"{'met' if met else 'NOT met'} ({rate:.1f} ratings/s, p95 next {p95['next']:.1f} ms, "
        f"submit {p95['submit']:.1f} ms)"
    )


if __name__ == "__main__":
    sys.exit(main())
