import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from conversations.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory


def pytest_collection_modifyitems(config, items):
    """On SQLite (the embedded default), skip the tests marked ``postgres``, and only those."""
    if not settings.TEST_ON_SQLITE:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (marked postgres); this run is on SQLite")
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip)


@pytest.fixture(params=["off", pytest.param("auto", marks=pytest.mark.postgres)])
def accel_mode(request, settings):
    """Run a test with the accelerations off (the plain Django path) and, on PostgreSQL, with
    every one on (``RATELOOP_ACCEL``, config/accel/): both must pass the same assertions."""
    settings.RATELOOP_ACCEL = request.param
    return request.param


def database_url() -> str:
    """The URL of the test database, for a process started by a test."""
    db = connection.settings_dict
    if settings.TEST_ON_SQLITE:
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path_factory):
    """Uploaded and exported files in a folder of this test's own: on SQLite a rolled-back
    test gives its row ids to the next test, whose job would find the last one's folder."""
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture
def project(db):
    return ProjectFactory()


@pytest.fixture
def member(project):
    """Make a user with a role in ``project``: ``member(Role.LEAD)``."""

    def make(role: str = Role.EVALUATOR, username: str | None = None):
        kwargs = {"username": username} if username else {}
        user = UserFactory(**kwargs)
        MembershipFactory(project=project, user=user, role=role)
        return user

    return make


@pytest.fixture
def lead(member):
    return member(Role.LEAD)


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def worker(db):
    """A Celery worker process on the test database and the test broker."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        RATELOOP_MEDIA_ROOT=str(settings.MEDIA_ROOT),
        RATELOOP_EXPORT_CACHE_DIR=str(settings.EXPORT_CACHE_DIR),
        RATELOOP_QUALITY_CACHE_DIR=str(settings.QUALITY_CACHE_DIR),
    )
    if settings.TEST_ON_SQLITE:  # the filesystem broker's folders are under the var folder
        env["RATELOOP_VAR_DIR"] = str(settings.TEST_VAR_DIR)
    celery_app.control.purge()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            # the pool production runs (the README's `celery -A config worker`): prefork,
            # whose children are daemonic and may not fork
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--queues",
            settings.CELERY_TASK_DEFAULT_QUEUE,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield proc
    celery_app.conf.task_always_eager = eager
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
