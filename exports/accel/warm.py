"""Fill a project's export caches when its pairs are queued, not at its first export.

A pair's text never changes once the pair exists (cache.py), so it can be encoded as soon
as the pair is created. ``items_queue`` and the judgment importer announce new pairwise items
(``ratings.signals.pairs_created``); when the transaction that created them commits, the
``export_cache_warm`` task (exports/tasks.py) encodes the pairs the caches do not hold yet,
as JSON fragments (JSONL exports) and as texts (Parquet exports). The first export then
reads only votes from PostgreSQL, as every later one does. Without it (the setting
``EXPORT_CACHE_WARM`` off, another machine's cache, a deleted cache folder) the export
encodes what is missing itself: slower, same bytes.

Two warms of one project never run at once (a PostgreSQL advisory lock, held by the
connection, so a killed worker releases it); the second finds the pairs encoded and only
checks them. An export running meanwhile is unaffected: generations are replaced atomically.
"""

import dataclasses
import time

from django.conf import settings
from django.db import connection, transaction

from config import accel
from config.accel.malloc import fix_malloc_mmap_threshold
from exports.accel import decisions
from exports.accel.cache import FragmentCache, TextCache
from exports.canonical import ExportFilters

# first key of the advisory lock (the second is the project id): "RLEXPORT" as a number
LOCK_KEY = 0x524C4558
ALL_PAIRS = dataclasses.replace(ExportFilters(), exclude_gold=False, include_external=True)


def enabled() -> bool:
    return accel.enabled("export_cache") and settings.EXPORT_CACHE_WARM


def project_ids_with_pairs() -> list[int]:
    """The projects that have pairwise items: those a cache may serve."""
    from ratings.models import Item, TaskKind

    return list(
        Item.objects.filter(kind=TaskKind.PAIRWISE)
        .values_list("project_id", flat=True)
        .distinct()
        .order_by("project_id")
    )


def warm_cache(project_id: int) -> dict:
    """Encode every pairwise item of the project that the caches miss. Returns the pairs the
    project has, those encoded now for each cache, and the seconds it took. PostgreSQL only
    (elsewhere there is no fast export to serve, and it returns zeros)."""
    from conversations.models import Project

    started = time.perf_counter()
    result = {"pairs": 0, "encoded_json": 0, "encoded_text": 0, "seconds": 0.0}
    if not accel.enabled("export_cache"):
        return result
    project = Project.objects.only("id").filter(pk=project_id).first()
    if project is None:  # gone since the task was sent: nothing to warm
        return result
    fix_malloc_mmap_threshold()  # memory flat as the project grows (config/accel/malloc.py)
    with connection.cursor() as cursor:  # session-level: held across the transaction below
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_KEY, project_id])
    # in an enclosing transaction other connections cannot see what it wrote: encode on this
    # one; otherwise on one connection per CPU, all reading this transaction's snapshot
    outermost = not connection.in_atomic_block
    try:
        with transaction.atomic():
            snapshot = None
            with connection.cursor() as cursor:
                if outermost:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                    cursor.execute("SET LOCAL jit = off")
                    cursor.execute("SELECT pg_export_snapshot()")
                    snapshot = cursor.fetchone()[0]
            ids, stamps = decisions.pairs(project, ALL_PAIRS)
            result["pairs"] = len(ids)
            for key, store in (("encoded_json", FragmentCache), ("encoded_text", TextCache)):
                cache = store(project_id)
                cache.ensure(ids, stamps, snapshot=snapshot)
                result[key] = cache.built
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_KEY, project_id])
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result
