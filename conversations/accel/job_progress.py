"""Job progress on a second connection (acceleration ``job_progress``)."""

from django.db import connections, models


def progress_connection(job_id: int, model: type[models.Model]):
    """A function that writes a summary's ``bytes_read`` and ``records_read`` to the job row
    ``job_id`` of ``model``, and the connection it writes through (the caller closes it).

    The connection is a second one, in autocommit, so that the progress is visible while the
    import's own transaction is still open. It relies on the database letting a second
    connection write the job row while the first holds an open transaction that wrote other
    rows (PostgreSQL does; SQLite would lock)."""
    side = connections.create_connection("default")
    side.set_autocommit(True)

    def write(summary) -> None:
        with side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {model._meta.db_table} SET bytes_read = %s, records_read = %s "
                "WHERE id = %s",
                [summary.bytes_read, summary.records_read, job_id],
            )

    return write, side
