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
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
MEDIA_ROOT = tempfile.mkdtemp(prefix="rateloop-test-media-")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = tempfile.mkdtemp(prefix="rateloop-test-static-")
QUALITY_CACHE_DIR = tempfile.mkdtemp(prefix="rateloop-test-quality-cache-")
