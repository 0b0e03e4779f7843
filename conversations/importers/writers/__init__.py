"""Write validated conversations with the ORM (``orm``), inside the caller's transaction, so
an import that fails leaves nothing. ``base`` holds the interface every writer implements;
the binary COPY writer, its faster twin on PostgreSQL, is in ``conversations.accel``.
"""

from conversations.importers.writers.base import BaseWriter
from conversations.importers.writers.orm import OrmWriter

__all__ = ["BaseWriter", "OrmWriter"]
