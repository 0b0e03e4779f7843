"""Test settings: PostgreSQL (never SQLite), a fast password hasher, media in a temp folder.

Celery runs eagerly here; the tests marked ``worker`` start a real worker on Redis instead.
"""

import os
import tempfile

import dj_database_url

from config.settings import *  # noqa: F403

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rateloop"),
        conn_max_age=0,
    )
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
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
