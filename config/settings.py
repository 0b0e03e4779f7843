"""Settings, read from environment variables with safe development defaults.

With nothing set the service runs on an embedded default: SQLite in ``var/`` and Celery's
filesystem transport (a real worker process reads the queue folder). Production sets
``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL`` (Redis or RabbitMQ). Every variable
is listed in the README.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.accel import parse as accel_parse
from config.safety import DEV_SECRET_KEY, refuse_unsafe_production

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RATELOOP_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


# Production mode unless development is asked for explicitly (dev.py up sets DJANGO_DEBUG=1).
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
refuse_unsafe_production(debug=DEBUG, secret_key=SECRET_KEY, allowed_hosts=ALLOWED_HOSTS)

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
    if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # HSTS: off until the site is known to work over HTTPS (docs/deploy.md).
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "conversations",
    "ratings",
    "exports",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.WebMethodsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.job_errors.BrokerUnavailableMiddleware",  # a job not queued: 503 page
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into its answer
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
if DATABASE_URL.startswith("sqlite"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
# A worker process writes while the web process reads: wait for locks instead of failing,
# and take the write lock when a transaction starts so that two writers never deadlock.
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    # Not a check: Django calls it whenever a password changes (any path), and it revokes
    # the user's API tokens.
    {"NAME": "conversations.auth.RevokeApiTokenOnPasswordChange"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out logins
    "django.contrib.auth.backends.ModelBackend",
]
# Login lockout (django-axes): every password login (web, admin, API token) counts; after
# this many failures in a row for one user name, that user name is refused (even with the
# right password) until the cool-off has passed with no new failure, or an admin runs
# `manage.py axes_reset_username NAME`. By user name, not IP: behind a proxy every
# client has the proxy's address, and guesses spread over many addresses still stop.
AXES_FAILURE_LIMIT = env_int("RATELOOP_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("RATELOOP_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes warns when the IP address is not a lockout parameter (it fears user-agent or cookie
# parameters that an attacker rotates); a user name is not rotated by the attacker.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "conversations.auth.lockout_response"
AXES_VERBOSE = False
# Debug pages (DJANGO_DEBUG=1 only) hide settings and environment values that hold
# credentials, including URLs with a password (DATABASE_URL, CELERY_BROKER_URL).
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.SecretHidingFilter"
# Content-Security-Policy (django-csp): scripts and style sheets only from this site; the
# charts' style="..." attributes are allowed, <style> elements and inline scripts are not.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Mail (invitations to set a password). Nothing is mailed unless a server or another backend
# is set: the lead then passes the link shown on the members page on.
EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "rateloop@localhost")

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("RATELOOP_MEDIA_ROOT", VAR_DIR / "media"))
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes a missing or bad credential a 401.
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "config.api_schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api_errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rateloop API",
    "DESCRIPTION": (
        "Chatbot response rating and RLHF preference collection.\n\n"
        "**Authentication.** Send an API token in the header `Authorization: Token <key>`."
        " To get one, log in to the web UI, open **My account** (`/account/`) and create a"
        " token there: give it a name (the script or machine that uses it), copy the key,"
        " which is shown once; the page lists your tokens with their last use and revokes"
        " them. A script can also trade a user name and password for a token with"
        " `POST /api/v1/auth/token/`. A token acts with its user's project roles; changing"
        " the password revokes the user's tokens. A missing or bad token answers 401 with"
        " `WWW-Authenticate: Token`. To try calls on this page, press **Authorize** and"
        " enter `Token <key>`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets are served by the service itself, not fetched from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # request bodies get their own components: an upload is binary there, a URL in answers
    "COMPONENT_SPLIT_REQUEST": True,
    # choice sets get the names readers know them by, not a generated "StateF6eEnum"
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "conversations.models.JobState",
        "FlagStateEnum": "ratings.models.quality.FlagState",
        "RunStateEnum": "ratings.models.quality.RunState",
        "AssignmentStateEnum": "ratings.models.work.AssignmentState",
        "TaskKindEnum": "ratings.models.rubrics.TaskKind",
        "SourceFormatEnum": "conversations.models.SourceFormat",
        "VerdictEnum": "ratings.models.judgments.Verdict",
    },
}

# Celery. Default: the filesystem transport, so that a real worker runs with no server at all.
BROKER_DIR = VAR_DIR / "broker"


def broker_folders(broker_dir: Path) -> dict:
    """The filesystem transport's options for a queue kept in ``broker_dir`` (made here)."""
    for folder in ("queue", "processed", "control"):
        (broker_dir / folder).mkdir(parents=True, exist_ok=True)
    return {
        # the exchange tables (kombu's default is a "control" folder in the working directory)
        "control_folder": str(broker_dir / "control"),
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "processed_folder": str(broker_dir / "processed"),
        "store_processed": False,
    }


CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = broker_folders(BROKER_DIR)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True  # job state lives in database rows (ImportJob, ExportJob...)
CELERY_TASK_ACKS_LATE = True
# A job whose worker died is failed by the sweep (conversations/jobs.py), not sent to the next
# worker: a job that killed its worker (out of memory) would kill that one too.
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# The code that exists only for speed (config/accel/): auto (what the database supports:
# all of it on PostgreSQL, none on SQLite), off (the plain Django path everywhere), or a
# comma-separated list of acceleration names; read on every use.
RATELOOP_ACCEL = os.environ.get("RATELOOP_ACCEL", "auto")
accel_parse(RATELOOP_ACCEL)  # an unknown name stops the start
QUALITY_INTERVAL_SECONDS = env_int("RATELOOP_QUALITY_INTERVAL_SECONDS", 900)
QUALITY_BOOTSTRAP_SAMPLES = env_int("RATELOOP_QUALITY_BOOTSTRAP_SAMPLES", 500)
QUALITY_MIN_SHARED_ITEMS = env_int("RATELOOP_QUALITY_MIN_SHARED_ITEMS", 20)
# Where quality runs keep the judgments they read, to read only new ones next time
# (PostgreSQL only; empty: always read everything).
QUALITY_CACHE_DIR = os.environ.get("RATELOOP_QUALITY_CACHE_DIR", str(VAR_DIR / "cache" / "quality"))
# Where export jobs keep each pair's text encoded as JSON, so that later exports need not read
# and escape it again (exports/accel/cache.py). Local to the machine; safe to delete.
EXPORT_CACHE_DIR = os.environ.get("RATELOOP_EXPORT_CACHE_DIR", str(VAR_DIR / "cache" / "exports"))
# Encode new pairs into that cache when they are queued (a Celery task on commit), so that a
# project's first export is as fast as the next ones (exports/accel/warm.py). PostgreSQL only.
EXPORT_CACHE_WARM = env_bool("RATELOOP_EXPORT_CACHE_WARM", True)
# ... and, as a safety net (a lost task, a cleared folder), every project's pairs this often
# (a complete cache: the pairs' ids and the cache's index are read). 0: only on queueing.
EXPORT_CACHE_WARM_INTERVAL_SECONDS = env_int("RATELOOP_EXPORT_CACHE_WARM_INTERVAL_SECONDS", 3600)
# A running job renews its heartbeat this often; the sweep (every minute) fails a running job
# whose heartbeat is older than JOB_STALE_SECONDS: its worker died (conversations/jobs.py).
JOB_HEARTBEAT_SECONDS = float(os.environ.get("RATELOOP_JOB_HEARTBEAT_SECONDS") or 30)
JOB_STALE_SECONDS = float(os.environ.get("RATELOOP_JOB_STALE_SECONDS") or 180)
# ... and sends again the task of a job still queued this long after it was sent (lost message).
JOB_REQUEUE_SECONDS = float(os.environ.get("RATELOOP_JOB_REQUEUE_SECONDS") or 600)
if JOB_STALE_SECONDS < 2 * JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "RATELOOP_JOB_STALE_SECONDS must be at least twice RATELOOP_JOB_HEARTBEAT_SECONDS"
    )
CELERY_BEAT_SCHEDULE = {
    "quality-refresh-all": {
        "task": "ratings.tasks.quality_refresh_all",
        "schedule": QUALITY_INTERVAL_SECONDS,
    },
    "leases-expire-all": {"task": "ratings.tasks.leases_expire_all", "schedule": 60},
    # fails jobs whose worker died (conversations/jobs.py)
    "jobs-sweep": {"task": "conversations.tasks.jobs_sweep", "schedule": 60},
}
if EXPORT_CACHE_WARM and EXPORT_CACHE_WARM_INTERVAL_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["export-cache-warm-all"] = {
        "task": "exports.tasks.export_cache_warm_all",
        "schedule": EXPORT_CACHE_WARM_INTERVAL_SECONDS,
    }

PSEUDONYM_KEY = os.environ.get("RATELOOP_PSEUDONYM_KEY", "")

# Import limits.
IMPORT_MAX_RECORD_BYTES = env_int("RATELOOP_IMPORT_MAX_RECORD_BYTES", 64 * 1024 * 1024)
IMPORT_BATCH_SIZE = env_int("RATELOOP_IMPORT_BATCH_SIZE", 2000)
IMPORT_MAX_REPORTED_ERRORS = env_int("RATELOOP_IMPORT_MAX_REPORTED_ERRORS", 200)
# Hostile input (docs/formats.md, "Limits"): arrays and objects nested deeper, files that
# decompress to more, runs of more blank lines, and uploads larger than these are refused.
IMPORT_MAX_JSON_DEPTH = env_int("RATELOOP_IMPORT_MAX_JSON_DEPTH", 200)
IMPORT_MAX_DECOMPRESSED_BYTES = env_int("RATELOOP_IMPORT_MAX_DECOMPRESSED_BYTES", 16 << 30)
IMPORT_MAX_BLANK_LINES = env_int("RATELOOP_IMPORT_MAX_BLANK_LINES", 1000)
IMPORT_MAX_UPLOAD_BYTES = env_int("RATELOOP_IMPORT_MAX_UPLOAD_BYTES", 2 << 30)
# "auto": the COPY writer checks foreign keys set-based where the database role may
# (conversations.accel.copy_writer.CopyWriter); "triggers": always PostgreSQL's per-row checks.
IMPORT_FOREIGN_KEYS = os.environ.get("RATELOOP_IMPORT_FOREIGN_KEYS", "auto")
if IMPORT_FOREIGN_KEYS not in ("auto", "triggers"):
    raise ImproperlyConfigured(
        f"RATELOOP_IMPORT_FOREIGN_KEYS must be auto or triggers, not {IMPORT_FOREIGN_KEYS!r}"
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
