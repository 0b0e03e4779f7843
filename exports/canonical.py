"""The canonical view every export is built from: one record per pair (or per response),
with its prompt, both candidates, every rater's vote and scores, and the versions used.

Records are read in chunks of items ordered by id (keyset pagination, four queries per chunk,
no model instances), so memory stays flat however large the project. This is the reference
read, plain Django on any database. With the acceleration ``export_snapshot`` (PostgreSQL,
exports/accel/snapshot.py), outside any enclosing transaction (an export job), the chunks are
read by a second thread on its own connection, one chunk ahead of the caller, in one
REPEATABLE READ snapshot: the database prepares the next chunk while the caller aggregates
and writes the current one.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, Q

from conversations.models import Project
from exports.accel.snapshot import can_read_ahead, read_ahead, serial_reads
from ratings.models import DriftFlag, FlagState, Item, Judgment, Score, TaskKind


@dataclass(frozen=True)
class ExportFilters:
    """Which judgments and items an export reads. Every field is opt-in; the defaults keep all."""

    include_external: bool = True
    exclude_gold: bool = False
    exclude_flagged_raters: bool = False
    date_from: datetime | None = None  # judgment created_at, inclusive
    date_to: datetime | None = None  # exclusive
    source: str | None = None  # conversation source format
    model: str | None = None  # either response's model

    def as_dict(self) -> dict:
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()
        }


@dataclass(slots=True)
class Vote:
    """One current judgment. A record lists its votes oldest first, but the time itself is
    not carried: no format writes it, and decoding time-zone-aware timestamps costs more than
    the rest of the vote (990,000 judgments: 4.5 s of CPU with them, 0.6 s without)."""

    rater_id: int
    preference: int | None
    both_bad: bool
    left_is_a: bool | None
    rationale: str
    is_external: bool
    source: str
    rubric_version: int | None
    guidelines_version: int
    verdict: str = ""
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Candidate:
    message_id: int
    external_id: str
    content: str
    model: str


@dataclass(slots=True)
class Record:
    item_id: int
    kind: str
    conversation_id: int
    prompt: list[dict]
    a: Candidate
    b: Candidate | None
    is_gold: bool
    votes: list[Vote]


def _flagged_raters(project: Project) -> set[int]:
    return set(
        DriftFlag.objects.filter(project=project, state=FlagState.OPEN).values_list(
            "rater_id", flat=True
        )
    )


def _items(project: Project, kind: str, f: ExportFilters):
    items = Item.objects.filter(project=project, kind=kind)
    if f.exclude_gold:
        items = items.filter(is_gold=False)
    if f.source:
        items = items.filter(conversation__source_format=f.source)
    if f.model:
        items = items.filter(Q(response__model=f.model) | Q(response_b__model=f.model))
    return items


def count_items(project: Project, kind: str, f: ExportFilters) -> int:
    return _items(project, kind, f).count()


def _current_judgments(items, f: ExportFilters):
    judgments = Judgment.objects.filter(item__in=items, is_current=True)
    if not f.include_external:
        judgments = judgments.filter(is_external=False)
    if f.date_from:
        judgments = judgments.filter(created_at__gte=f.date_from)
    if f.date_to:
        judgments = judgments.filter(created_at__lt=f.date_to)
    return judgments


def _prompts(in_chunk) -> dict[int, list[dict]]:
    """Item id -> its prompt: the main-line messages before the judged response, in order."""
    prompts: dict[int, list[dict]] = defaultdict(list)
    for item_id, role, content in (
        in_chunk.filter(
            conversation__messages__candidate=0,
            conversation__messages__position__lt=F("response__position"),
        )
        .order_by("id", "conversation__messages__position")
        .values_list("id", "conversation__messages__role", "conversation__messages__content")
    ):
        prompts[item_id].append({"role": role, "content": content})
    return prompts


# Vote's fields, in order (scores come from their own query)
_VOTE_COLUMNS = (
    "rater_id",
    "preference",
    "both_bad",
    "left_is_a",
    "rationale",
    "is_external",
    "source",
    "rubric__version",
    "guidelines_version",
    "verdict",
)


def _votes(in_chunk, f: ExportFilters, flagged: set[int]) -> dict[int, list[Vote]]:
    """Item id -> its current votes after the filters, oldest first, with their scores."""
    judgments = _current_judgments(in_chunk, f)
    scores: dict[int, dict[str, float]] = defaultdict(dict)
    for jid, key, value in Score.objects.filter(
        judgment__in=judgments, value__isnull=False
    ).values_list("judgment_id", "criterion__key", "value"):
        scores[jid][key] = value
    votes: dict[int, list[Vote]] = defaultdict(list)
    for row in judgments.order_by("item_id", "created_at", "id").values_list(
        "id", "item_id", *_VOTE_COLUMNS
    ):
        if row[2] not in flagged:
            votes[row[1]].append(Vote(*row[2:], scores.get(row[0]) or {}))
    return votes


def iter_records(
    project: Project, kind: str, f: ExportFilters, *, chunk: int = 2000, ahead: bool | None = None
) -> Iterator[Record]:
    """Every item of ``kind`` (with at least one vote after filtering), in item id order.

    Each chunk of items costs four queries (items with both responses, prompts, votes,
    scores); the last three select the chunk by id range as a subquery rather than by a list
    of ids, which would have to be built, sent and parsed for every chunk. A chunk of 5,000
    pairs with responses of a few hundred words is about 10 MB of text; one chunk is in
    use and, when reading ahead, one more is being read. ``ahead`` (default: when the
    acceleration ``export_snapshot`` is on and no transaction is open, since a second
    connection cannot see uncommitted rows) reads in a second thread, see the module docstring.
    """
    if ahead is None:
        ahead = can_read_ahead()

    def produce() -> Iterator[list[Record]]:
        with serial_reads(snapshot=True):
            yield from _record_chunks(project, kind, f, chunk)

    for records in read_ahead(produce) if ahead else produce():
        yield from records


def _record_chunks(project: Project, kind: str, f: ExportFilters, chunk: int):
    flagged = _flagged_raters(project) if f.exclude_flagged_raters else set()
    items = _items(project, kind, f)
    last = 0
    fields = (
        "id",
        "conversation_id",
        "response_id",
        "response__external_id",
        "response__content",
        "response__model",
        "response_b_id",
        "response_b__external_id",
        "response_b__content",
        "response_b__model",
        "is_gold",
    )
    while True:
        rows = list(items.filter(id__gt=last).order_by("id").values_list(*fields)[:chunk])
        if not rows:
            return
        in_chunk = items.filter(id__gt=last, id__lte=rows[-1][0])
        last = rows[-1][0]
        prompts = _prompts(in_chunk)
        votes = _votes(in_chunk, f, flagged)
        records = []
        for r in rows:
            item_votes = votes.get(r[0])
            if not item_votes:
                continue
            records.append(
                Record(
                    item_id=r[0],
                    kind=kind,
                    conversation_id=r[1],
                    prompt=prompts.get(r[0], []),
                    a=Candidate(r[2], r[3] or "", r[4], r[5] or ""),
                    b=Candidate(r[6], r[7] or "", r[8], r[9] or "") if r[6] else None,
                    is_gold=r[10],
                    votes=item_votes,
                )
            )
        del rows, prompts, votes  # let this chunk's rows go before the next one is read
        yield records
        del records


def all_pairwise_votes(
    project: Project, f: ExportFilters
) -> tuple[list[int], list[int], list[int]]:
    """(item ids, rater ids, labels -1/0/1) of every current pairwise vote: for Dawid-Skene,
    which needs all votes at once before any pair can be decided."""
    flagged = _flagged_raters(project) if f.exclude_flagged_raters else set()
    judgments = _current_judgments(_items(project, TaskKind.PAIRWISE, f), f).filter(
        preference__isnull=False
    )
    items, raters, labels = [], [], []
    for item, rater, pref in judgments.values_list("item_id", "rater_id", "preference").iterator(
        chunk_size=20000
    ):
        if rater in flagged:
            continue
        items.append(item)
        raters.append(rater)
        labels.append((pref > 0) - (pref < 0))
    return items, raters, labels
