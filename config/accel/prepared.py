"""A cursor for the rating path's hand-written statements that PostgreSQL prepares once per
connection: later runs of the same statement skip parsing and planning, which for the claim
of ``next`` cost the database about as much as running it.

Django turns psycopg's prepared statements off for the whole connection (they do not survive
a transaction-pooling connection pooler, and server-side binding changes how some ORM
queries are typed), so only the few statements run through this cursor are prepared, with
their parameters bound by the server. Such a statement must name the type of any parameter
whose value may be None where PostgreSQL cannot infer it (e.g. ``%s::integer`` in an
``INSERT ... SELECT``). On other databases this is the ordinary cursor.

The cursor is Django's wrapper around it (database errors mapped, queries counted and logged
as usual); like ``connection.cursor()`` it is used in a ``with`` block.
"""

from django.db import DEFAULT_DB_ALIAS, connections

from config import accel

try:
    import psycopg
    from psycopg.pq import Format
except ImportError:  # psycopg 2 or another database: ordinary cursors only
    psycopg = None


if psycopg is not None:
    from django.db.backends.postgresql.psycopg_any import register_tzloader

    TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid
    ONLY_WHEN_ASKED = 2**31 - 1  # executions before psycopg prepares a statement unasked

    class _PreparingCursor(psycopg.Cursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)


def prepared_cursor():
    """Django's cursor on the default connection, preparing what it runs on PostgreSQL."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each attribute of ``connection`` is a lookup
    if psycopg is None or not accel.enabled("prepared_statements"):
        return db.cursor()
    # what db.cursor() does, with a server-side binding cursor under the wrapper
    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        raw = db.connection
        if raw.prepare_threshold is None:
            # Django's setting: psycopg then prepares nothing, even when asked. Asked is the
            # only way now: Django's own cursors bind on the client and are never prepared.
            raw.prepare_threshold = ONLY_WHEN_ASKED
        cursor = _PreparingCursor(raw)
        # as Django's own cursors: the session's time zone for timestamps read
        if db.timezone != raw.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone:
            register_tzloader(db.timezone, cursor)
        return db._prepare_cursor(cursor)
