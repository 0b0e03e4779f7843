"""When the COPY writer may check foreign keys set-based (see ``CopyWriter``)."""

from django.contrib.auth import get_user_model
from django.db import connection

from conversations.models import Conversation, ImportJob, KBReference, Message, Project


def foreign_keys() -> set[tuple[str, str, str]]:
    """The foreign keys of the tables the COPY writer fills, as (table, column, referenced
    table): the references whose set-based checking ``CopyWriter`` describes."""
    conversation, message = Conversation._meta.db_table, Message._meta.db_table
    return {
        (conversation, "project_id", Project._meta.db_table),
        (conversation, "import_job_id", ImportJob._meta.db_table),
        (conversation, "author_id", get_user_model()._meta.db_table),
        (message, "conversation_id", conversation),
        (KBReference._meta.db_table, "message_id", message),
    }


def set_based_checks_possible(cursor) -> bool:
    """Whether this session may skip the per-row foreign-key checks of its COPYs: its role
    may set ``session_replication_role``, and the tables have the foreign keys
    ``foreign_keys`` lists and no trigger besides those foreign keys' own."""
    if connection.pg_version >= 150000:
        cursor.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
    else:  # before PostgreSQL 15, only a superuser may
        cursor.execute("SELECT current_setting('is_superuser') = 'on'")
    if not cursor.fetchone()[0]:
        return False
    tables = sorted({table for table, _, _ in foreign_keys()})
    cursor.execute(
        "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text "
        "FROM pg_constraint c JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
        "WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[])",
        [tables],
    )
    found = {tuple(row) for row in cursor.fetchall()}
    cursor.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = ANY(%s::regclass[]) AND NOT tgisinternal",
        [tables],
    )
    return found == foreign_keys() and cursor.fetchone()[0] == 0
