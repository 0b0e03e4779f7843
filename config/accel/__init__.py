"""One switch for the code that exists only for speed (or needs a PostgreSQL feature).

Every service holds a plain Django path that runs on any database and is what the SQLite
test run checks. Where a faster path exists, the service asks ``enabled("<name>")`` at call
time and takes the fast path only when it answers True; nothing else in the project asks
which database it runs on.

The setting ``RATELOOP_ACCEL`` (environment variable of the same name) decides for the
whole process:

- ``auto`` (default): every acceleration the database supports (all of them on PostgreSQL,
  none on SQLite);
- ``off``: none, the plain path everywhere;
- a comma-separated list of names from :data:`ACCELERATIONS`: only those (still only where
  the database supports them).

An unknown name is refused (``ImproperlyConfigured``) when the settings load, rather than
silently ignored. The setting is read on every call, so a test's ``override_settings`` and an operator's change of
the variable followed by a restart of the web and worker processes take effect without a
deploy.

The package also holds the process tuning shared by the apps (``malloc``, ``prepared``);
README.md here lists every acceleration and the app package (``<app>/accel/``) it lives in.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections

# name -> (what it does, the database vendors that support it)
ACCELERATIONS: dict[str, tuple[str, frozenset[str]]] = {
    "import_copy": (
        "transcript import writes with binary COPY and looks stored ids up with one array",
        frozenset({"postgresql"}),
    ),
    "next_sql": (
        "a rater's next item is found and leased in one SQL statement",
        frozenset({"postgresql"}),
    ),
    "submit_sql": (
        "a judgment is read, checked and stored in one SQL statement each way",
        frozenset({"postgresql"}),
    ),
    "prepared_statements": (
        "the rating path's statements are prepared once per connection",
        frozenset({"postgresql"}),
    ),
    "quality_copy": (
        "quality runs read judgments with COPY, only the new ones since the last run",
        frozenset({"postgresql"}),
    ),
    "export_snapshot": (
        "exports read in one snapshot without parallel query workers, the next chunk "
        "read ahead on a second connection",
        frozenset({"postgresql"}),
    ),
    "export_cache": (
        "exports of pairs are served from the cache of encoded text (the fast export), "
        "warmed when pairs are queued",
        frozenset({"postgresql"}),
    ),
    "job_progress": (
        "import and export jobs write their progress on a second connection while they run",
        frozenset({"postgresql"}),
    ),
}


@lru_cache(maxsize=8)
def parse(value: str) -> frozenset[str] | None:
    """The names a setting value selects; None for ``auto``."""
    value = (value or "auto").strip().lower()
    if value == "auto":
        return None
    if value == "off":
        return frozenset()
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(names - ACCELERATIONS.keys())
    if unknown:
        raise ImproperlyConfigured(
            f"RATELOOP_ACCEL names unknown accelerations: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(ACCELERATIONS))}; or auto, or off)"
        )
    return names


def enabled(name: str) -> bool:
    """Whether the acceleration ``name`` is on for the default database, now."""
    if name not in ACCELERATIONS:
        raise ValueError(f"no acceleration named {name!r}")
    chosen = parse(getattr(settings, "RATELOOP_ACCEL", "auto"))
    if chosen is not None and name not in chosen:
        return False
    return connections[DEFAULT_DB_ALIAS].vendor in ACCELERATIONS[name][1]


def enabled_names() -> list[str]:
    """The accelerations on now, in the order of :data:`ACCELERATIONS`."""
    return [name for name in ACCELERATIONS if enabled(name)]
