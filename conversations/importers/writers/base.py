"""What every writer does: encode a conversation, pack a batch, write the kept ones."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from conversations.importers.records import ParsedConversation


class BaseWriter(ABC):
    """Turns validated conversations into rows: ``encode`` (no database; it may run in the
    parsing process) makes a conversation's payload, ``pack`` a batch of them (there too),
    ``write`` stores the batch's conversations that the importer keeps."""

    background = False  # may write() run in a helper thread, and encode() in another process?

    def __init__(
        self,
        *,
        project_id: int,
        source_format: str,
        source_name: str,
        import_job_id: int | None,
        author_id: int | None,
        now: datetime,
    ):
        self.project_id = project_id
        self.source_format = source_format
        self.source_name = source_name[:255]
        self.import_job_id = import_job_id
        self.author_id = author_id
        self.now = now

    def begin(self) -> None:
        """Called once, in the import's transaction, before the first ``write``."""
        return None

    def finish(self) -> None:
        """Called once after the last ``write`` of an import that is going to be committed."""
        return None

    @abstractmethod
    def encode(self, conv: ParsedConversation, external_id: str, digest: str) -> object:
        """What ``write`` needs of this conversation; picklable."""

    def pack(self, rows: list[object]) -> object:
        """A batch of what ``encode`` made, as ``write`` takes it; picklable."""
        return rows

    @abstractmethod
    def write(self, packed, keep: Sequence[int]) -> None:
        """Insert conversations ``keep`` (indexes, ascending) of a batch ``pack`` made."""
