"""The canonical view every export is built from: one record per pair (or per response),
with its prompt, both candidates, every rater's vote and scores, and the versions used.

Records are read in chunks of items ordered by id (keyset pagination, a handful of queries per
chunk, no model instances), so memory stays flat however large the project.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from conversations.models import Message, Project
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


@dataclass
class Vote:
    rater_id: int
    preference: int | None
    both_bad: bool
    left_is_a: bool | None
    rationale: str
    created_at: datetime
    is_external: bool
    source: str
    rubric_version: int | None
    guidelines_version: int
    verdict: str = ""
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Candidate:
    message_id: int
    external_id: str
    content: str
    model: str


@dataclass
class Record:
    item_id: int
    kind: str
    conversation_id: int
    conversation_external_id: str
    source_format: str
    source_line: int | None
    occurred_at: datetime | None
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


def iter_records(
    project: Project, kind: str, f: ExportFilters, *, chunk: int = 5000
) -> Iterator[Record]:
    """Every item of ``kind`` (with at least one vote after filtering), in item id order."""
    flagged = _flagged_raters(project) if f.exclude_flagged_raters else set()
    items = _items(project, kind, f)
    last = 0
    fields = (
        "id",
        "conversation_id",
        "conversation__external_id",
        "conversation__source_format",
        "conversation__source_line",
        "conversation__occurred_at",
        "response_id",
        "response__external_id",
        "response__content",
        "response__model",
        "response__position",
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
        last = rows[-1][0]
        ids = [r[0] for r in rows]
        context: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
        for conv, pos, role, content in (
            Message.objects.filter(conversation_id__in={r[1] for r in rows}, candidate=0)
            .order_by("conversation_id", "position")
            .values_list("conversation_id", "position", "role", "content")
        ):
            context[conv].append((pos, role, content))
        judgments = Judgment.objects.filter(item_id__in=ids, is_current=True)
        if not f.include_external:
            judgments = judgments.filter(is_external=False)
        if f.date_from:
            judgments = judgments.filter(created_at__gte=f.date_from)
        if f.date_to:
            judgments = judgments.filter(created_at__lt=f.date_to)
        votes: dict[int, list[Vote]] = defaultdict(list)
        by_id: dict[int, Vote] = {}
        for (
            jid,
            item_id,
            rater,
            pref,
            both_bad,
            left,
            rationale,
            at,
            ext,
            source,
            rv,
            gv,
            verdict,
        ) in judgments.order_by("item_id", "created_at", "id").values_list(
            "id",
            "item_id",
            "rater_id",
            "preference",
            "both_bad",
            "left_is_a",
            "rationale",
            "created_at",
            "is_external",
            "source",
            "rubric__version",
            "guidelines_version",
            "verdict",
        ):
            if rater in flagged:
                continue
            vote = Vote(rater, pref, both_bad, left, rationale, at, ext, source, rv, gv, verdict)
            votes[item_id].append(vote)
            by_id[jid] = vote
        if by_id:
            for jid, key, value in Score.objects.filter(
                judgment_id__in=list(by_id), value__isnull=False
            ).values_list("judgment_id", "criterion__key", "value"):
                by_id[jid].scores[key] = value
        for r in rows:
            if not votes.get(r[0]):
                continue
            position = r[10]
            prompt = [
                {"role": role, "content": content}
                for pos, role, content in context[r[1]]
                if pos < position
            ]
            b = Candidate(r[11], r[12] or "", r[13], r[14] or "") if r[11] else None
            yield Record(
                item_id=r[0],
                kind=kind,
                conversation_id=r[1],
                conversation_external_id=r[2],
                source_format=r[3],
                source_line=r[4],
                occurred_at=r[5],
                prompt=prompt,
                a=Candidate(r[6], r[7] or "", r[8], r[9] or ""),
                b=b,
                is_gold=r[15],
                votes=votes[r[0]],
            )


def all_pairwise_votes(
    project: Project, f: ExportFilters
) -> tuple[list[int], list[int], list[int]]:
    """(item ids, rater ids, labels -1/0/1) of every current pairwise vote: for Dawid-Skene,
    which needs all votes at once before any pair can be decided."""
    flagged = _flagged_raters(project) if f.exclude_flagged_raters else set()
    judgments = Judgment.objects.filter(
        item__in=_items(project, TaskKind.PAIRWISE, f), is_current=True, preference__isnull=False
    )
    if not f.include_external:
        judgments = judgments.filter(is_external=False)
    if f.date_from:
        judgments = judgments.filter(created_at__gte=f.date_from)
    if f.date_to:
        judgments = judgments.filter(created_at__lt=f.date_to)
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
