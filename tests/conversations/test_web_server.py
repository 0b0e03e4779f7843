"""The production web server's settings (config/gunicorn.conf.py)."""

import os
import runpy
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "config" / "gunicorn.conf.py"


def load_conf(monkeypatch, **env) -> dict:
    for name in ("WEB_CONCURRENCY", "RATELOOP_WEB_THREADS", "RATELOOP_GIL_SWITCH_INTERVAL_MS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults_threads_and_switch_interval(monkeypatch):
    conf = load_conf(monkeypatch)
    assert conf["worker_class"] == "gthread"
    assert conf["workers"] == (os.cpu_count() or 1)
    assert conf["threads"] == 4
    assert conf["keepalive"] == 10
    before = sys.getswitchinterval()
    try:
        conf["post_fork"](None, None)
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    finally:
        sys.setswitchinterval(before)


def test_settings_from_the_environment(monkeypatch):
    conf = load_conf(
        monkeypatch,
        WEB_CONCURRENCY="3",
        RATELOOP_WEB_THREADS="8",
        RATELOOP_GIL_SWITCH_INTERVAL_MS="2",
    )
    assert (conf["workers"], conf["threads"], conf["switch_interval_s"]) == (3, 8, 0.002)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEB_CONCURRENCY", "two"),
        ("RATELOOP_WEB_THREADS", "0"),
        ("RATELOOP_GIL_SWITCH_INTERVAL_MS", "-1"),
    ],
)
def test_bad_values_are_refused_by_name(monkeypatch, name, value):
    with pytest.raises(SystemExit, match=f"{name} must be a positive number, not '{value}'"):
        load_conf(monkeypatch, **{name: value})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_serves_the_site_with_this_configuration(tmp_path):
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GUNICORN_"))}
    env = {
        **clean,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "k" * 60,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "WEB_CONCURRENCY": "1",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen(
        [gunicorn, "-c", str(CONF), "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/login/")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gunicorn did not answer in 30 s"
                time.sleep(0.2)
        assert response.status_code == 200
        assert "<form" in response.text
        # the threaded worker keeps the connection open between calls
        assert response.headers.get("connection", "").lower() != "close"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
