#!/usr/bin/env python3
"""Set up and run the service, or run the tests. Needs only Python 3.11.

    python3 dev.py up      # .venv, dependencies, migrations, demo project and users,
                           # then the web UI and API on http://127.0.0.1:8000 with a worker
    python3 dev.py test    # the whole test suite (needs PostgreSQL and Redis, see README)
    python3 dev.py test --sqlite   # the suite on SQLite, the embedded default (no server)

Everything it installs goes into .venv/ and var/ inside this folder.
"""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
LOCK = ROOT / "requirements.lock"


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def run(*args: str, env: dict | None = None) -> None:
    subprocess.run(args, check=True, cwd=ROOT, env=env)


def ensure_venv() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"Python 3.11 is required (this is {sys.version.split()[0]}).")
    if not PY.exists():
        say("creating .venv")
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{digest[:16]}"
    if stamp.exists():
        return
    say("installing dependencies from requirements.lock (first run takes a few minutes)")
    run(str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(str(PY), "-m", "pip", "install", "--quiet", "-r", str(LOCK))
    for old in VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _wait_for_port(port: str, *procs: subprocess.Popen) -> None:
    """Wait until the web server answers (or a process has stopped)."""
    while not port_open("127.0.0.1", int(port)):
        if any(p.poll() is not None for p in procs):
            return
        time.sleep(0.3)


def _welcome(port: str) -> None:
    base = f"http://127.0.0.1:{port}"
    print(
        f"""
==> Rateloop is running. Ctrl-C (or SIGTERM) stops the server and the worker.

    Web UI     {base}/
    API        {base}/api/v1/
    API docs   {base}/api/v1/docs/

    First things to try:
      1. Log in as lead (password demo-lead): open the demo project's overview, its
         Members page (invite a rater) and its quality dashboard.
      2. Log in as rater1 (password demo-rater1) and rate: "Compare pairs", keys 1-5,
         Enter submits.
      3. Under "My account", create an API token and list your projects with it:
         curl -H "Authorization: Token <key>" {base}/api/v1/projects/

    The admin site needs an administrator account; make one with
      DJANGO_DEBUG=1 .venv/bin/python manage.py createsuperuser
""",
        flush=True,
    )


def up(args: list[str]) -> None:
    ensure_venv()
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "1")
    manage = [str(PY), "manage.py"]
    say("migrating the database")
    run(*manage, "migrate", "--noinput", "-v", "0", env=env)
    say("loading the demo project")
    run(*manage, "load_demo", env=env)
    port = args[0] if args else env.get("PORT", "8000")
    say("starting the background worker (with the periodic scheduler)")
    worker = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "-c",  # the default (prefork) pool, as in production
            "2",
            "--loglevel",
            "WARNING",
            "--beat",
            "--schedule",
            str(ROOT / "var" / "celerybeat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    web = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches dev.py only, which stops both in order
    )
    # SIGTERM (e.g. from a process manager) stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _wait_for_port(port, web, worker)
        _welcome(port)
        while web.poll() is None and worker.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping the server and the worker")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal does not cut this short
        for proc in (web, worker):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (web, worker):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test(args: list[str]) -> None:
    ensure_venv()
    env = dict(os.environ)
    missing = []
    if "--sqlite" in args:
        # The embedded default: SQLite and the filesystem broker, no server needed; the tests
        # marked postgres are skipped (config/settings_test.py, tests/conftest.py).
        args = [a for a in args if a != "--sqlite"]
        env["TEST_DATABASE_URL"] = "sqlite:///rateloop-test.sqlite3"
    else:
        db = urlparse(env.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rateloop"))
        broker = urlparse(env.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"))
        if not port_open(db.hostname or "127.0.0.1", db.port or 5432):
            missing.append(f"PostgreSQL at {db.hostname}:{db.port or 5432} (TEST_DATABASE_URL)")
        if not port_open(broker.hostname or "127.0.0.1", broker.port or 6379):
            missing.append(
                f"Redis at {broker.hostname}:{broker.port or 6379} (TEST_CELERY_BROKER_URL)"
            )
    browser = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(browser).exists() and not shutil.which("chromium"):
        missing.append(
            f"Chromium at {browser} (Debian: apt-get install -y chromium; or CHROMIUM_PATH)"
        )
    if missing:
        sys.exit("The test suite needs these and cannot reach them:\n  - " + "\n  - ".join(missing))
    result = subprocess.run([str(PY), "-m", "pytest", *args], cwd=ROOT, env=env)
    sys.exit(result.returncode)


def main() -> None:
    command, *args = sys.argv[1:] or ["up"]
    try:
        dispatch(command, args)
    except subprocess.CalledProcessError as exc:
        sys.exit(
            f"dev.py: '{' '.join(map(str, exc.cmd))}' failed with exit status {exc.returncode}"
        )


def dispatch(command: str, args: list[str]) -> None:
    if command == "up":
        up(args)
    elif command == "test":
        test(args)
    elif command == "install":
        ensure_venv()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
