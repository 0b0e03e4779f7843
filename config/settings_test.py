"""Test settings: the database of ``TEST_DATABASE_URL``, a fast password hasher, temp folders.

PostgreSQL by default; ``TEST_DATABASE_URL=sqlite:///...`` runs the suite on SQLite, the
embedded default (``python3 dev.py test --sqlite``), with the same connection options as
``config/settings.py`` and a test database in a file, so that a worker process and the live
server see what a test wrote. Tests marked ``postgres`` are skipped there (tests/conftest.py).

Celery runs eagerly here; the tests marked ``worker`` start a real worker instead: on Redis
(``TEST_CELERY_BROKER_URL``) with PostgreSQL, on the filesystem transport with SQLite, as
users run each.
"""

import os
import tempfile
from pathlib import Path

import dj_database_url

# Development mode, as `dev.py up` runs (Django's test runner still turns DEBUG off); the
# tests of production mode start their own processes with their own environment.
os.environ.setdefault("DJANGO_DEBUG", "1")

from config.settings import *  # noqa: E402, F403

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rateloop"),
        conn_max_age=0,
    )
}
TEST_ON_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
if TEST_ON_SQLITE:
    # What users run: the options of config/settings.py, and the filesystem broker in a
    # folder of this run (the worker fixture points its process at the same folder).
    DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)  # noqa: F405
    TEST_VAR_DIR = Path(tempfile.mkdtemp(prefix="rateloop-test-var-"))
    DATABASES["default"]["TEST"] = {"NAME": str(TEST_VAR_DIR / "test.sqlite3")}
    CELERY_TASK_DEFAULT_QUEUE = "rateloop-test"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = broker_folders(TEST_VAR_DIR / "broker")  # noqa: F405
else:
    # One queue per test database, so that test runs on different databases sharing one Redis
    # never take (or purge) each other's tasks; the worker fixture listens on it.
    CELERY_TASK_DEFAULT_QUEUE = f"rateloop-test-{DATABASES['default']['NAME']}"
    CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
MEDIA_ROOT = tempfile.mkdtemp(prefix="rateloop-test-media-")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = tempfile.mkdtemp(prefix="rateloop-test-static-")
QUALITY_CACHE_DIR = tempfile.mkdtemp(prefix="rateloop-test-quality-cache-")
EXPORT_CACHE_DIR = tempfile.mkdtemp(prefix="rateloop-test-export-cache-")
