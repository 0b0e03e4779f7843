"""Write validated conversations: PostgreSQL COPY where available, the ORM elsewhere.

Both writers run inside the caller's transaction, so an import that fails leaves nothing.
``binary`` holds the COPY format, ``copy_writer`` the COPY writer, ``orm`` the ORM one,
``foreign_keys`` when the COPY writer may check foreign keys set-based.
"""

from config import accel
from conversations.importers.writers.base import BaseWriter
from conversations.importers.writers.binary import (
    _MESSAGE_START,
    EMPTY_JSON,
    ID,
    MESSAGE_ID_AT,
    _length,
    copy_json,
    message_row,
)
from conversations.importers.writers.copy_writer import CopyRows, CopyWriter
from conversations.importers.writers.foreign_keys import foreign_keys, set_based_checks_possible
from conversations.importers.writers.orm import OrmWriter

__all__ = [
    "EMPTY_JSON",
    "ID",
    "MESSAGE_ID_AT",
    "_MESSAGE_START",
    "BaseWriter",
    "CopyRows",
    "CopyWriter",
    "OrmWriter",
    "_length",
    "copy_json",
    "foreign_keys",
    "message_row",
    "set_based_checks_possible",
    "writer_class",
]


def writer_class() -> type[BaseWriter]:
    return CopyWriter if accel.enabled("import_copy") else OrmWriter
