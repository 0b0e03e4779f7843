"""Work items from imported conversations, by documented rules (docs/workflow.md).

Rules:
- rubric scoring: every assistant response at a conversation's last position (every
  candidate there), or at every position with ``all_turns``;
- pairwise: every pair of candidates at the same position (the same context);
- KB verification: every assistant response that cites at least one KB passage.
Queuing is idempotent: an item that exists is left as it is (its judgments untouched).
"""

from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max

from conversations.models import Conversation, Message, MessageRole, Project, Role
from conversations.services.access import require_role
from ratings.consensus import kb_consensus, pairwise_consensus
from ratings.models import Criterion, Item, TaskKind
from ratings.signals import pairs_created


@dataclass(frozen=True)
class QueueFilter:
    source_format: str | None = None
    source_name: str | None = None
    model: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    metadata: dict | None = None
    external_ids: tuple[str, ...] | None = None


def _conversations(project: Project, f: QueueFilter):
    qs = Conversation.objects.filter(project=project)
    if f.source_format:
        qs = qs.filter(source_format=f.source_format)
    if f.source_name:
        qs = qs.filter(source_name=f.source_name)
    if f.model:
        qs = qs.filter(messages__model=f.model).distinct()
    if f.occurred_from:
        qs = qs.filter(occurred_at__gte=f.occurred_from)
    if f.occurred_to:
        qs = qs.filter(occurred_at__lt=f.occurred_to)
    for key, value in (f.metadata or {}).items():
        qs = qs.filter(**{f"metadata__{key}": value})
    if f.external_ids is not None:
        qs = qs.filter(external_id__in=list(f.external_ids))
    return qs


SCORE_NEEDS_RUBRIC = (
    "Score items need a rubric: add at least one criterion for rubric scoring on the Rubric"
    " page first, or queue other kinds of items."
)


def has_score_rubric(project: Project) -> bool:
    """Whether the project's current rubric has a criterion raters score items on: without
    one, a score item would ask nothing."""
    applies = Criterion.objects.filter(
        rubric__project=project, rubric__is_current=True
    ).values_list("applies_to", flat=True)
    return any(TaskKind.SCORE in (a or [TaskKind.SCORE]) for a in applies)


@transaction.atomic
def items_queue(
    *,
    project: Project,
    user,
    kinds: tuple[str, ...] | None = None,
    queue_filter: QueueFilter | None = None,
    priority: int = 0,
    all_turns: bool = False,
    batch_size: int = 2000,
) -> dict[str, int]:
    """Create the items the rules give for the matching conversations. Leads only.

    Returns the number of new items per kind. Raises ValidationError for a kind the project
    does not run, for score items asked for before the rubric has a criterion for scoring
    (without ``kinds``, score items are then left out), and when an uploaded id list names
    conversations that do not exist.
    """
    if user is not None:
        require_role(user=user, project=project, roles=(Role.LEAD,), action="queuing items")
    enabled = TaskKind.run_by(project)
    if not kinds and TaskKind.SCORE in enabled and not has_score_rubric(project):
        # "Everything the project runs" leaves score items out until a rubric exists.
        enabled = [k for k in enabled if k != TaskKind.SCORE]
    kinds = tuple(kinds or enabled)
    bad = [k for k in kinds if k not in enabled]
    if bad:
        raise ValidationError({"kinds": f"this project does not run {', '.join(bad)} items"})
    if TaskKind.SCORE in kinds and not has_score_rubric(project):
        raise ValidationError({"kinds": SCORE_NEEDS_RUBRIC})
    f = queue_filter or QueueFilter()
    conversations = _conversations(project, f)
    if f.external_ids is not None:
        found = set(conversations.values_list("external_id", flat=True))
        missing = [x for x in f.external_ids if x not in found]
        if missing:
            raise ValidationError(
                {
                    "external_ids": f"{len(missing)} unknown conversation id(s), e.g. {', '.join(missing[:5])}"
                }
            )
    responses = Message.objects.filter(
        conversation__in=conversations.values("id"), role=MessageRole.ASSISTANT
    )
    if f.model:
        responses = responses.filter(model=f.model)
    if not all_turns:
        last = (
            Message.objects.filter(conversation__in=conversations.values("id"))
            .values("conversation_id")
            .annotate(p=Max("position"))
        )
        last_positions = {row["conversation_id"]: row["p"] for row in last}
    counts = dict.fromkeys(kinds, 0)
    origin = "list" if f.external_ids is not None else ("filter" if f != QueueFilter() else "rule")
    rows = responses.values_list(
        "id", "conversation_id", "position", "conversation__author_id"
    ).order_by("conversation_id", "position", "candidate")
    with_kb = set()
    if TaskKind.KB_VERIFY in kinds:
        with_kb = set(
            responses.filter(kb_references__isnull=False).values_list("id", flat=True).distinct()
        )
    pending: list[Item] = []

    def flush():
        if pending:
            created = Item.objects.bulk_create(pending, ignore_conflicts=True)
            del created
            pending.clear()

    def add(kind, conversation_id, author_id, a, b=None):
        pending.append(
            Item(
                project=project,
                kind=kind,
                conversation_id=conversation_id,
                response_id=a,
                response_b_id=b,
                author_id_cache=author_id,
                overlap=project.overlap,
                priority=priority,
                origin=origin,
            )
        )
        if len(pending) >= batch_size:
            flush()

    before = {k: Item.objects.filter(project=project, kind=k).count() for k in kinds}
    group: list[tuple[int, int, int, int | None]] = []

    def close_group():
        if len(group) >= 2 and TaskKind.PAIRWISE in kinds:
            for (a, conv, _, author), (b, _, _, _) in combinations(group, 2):
                add(TaskKind.PAIRWISE, conv, author, min(a, b), max(a, b))

    for msg_id, conv_id, position, author_id in rows.iterator(chunk_size=5000):
        if group and (group[0][1], group[0][2]) != (conv_id, position):
            close_group()
            group = []
        group.append((msg_id, conv_id, position, author_id))
        if TaskKind.SCORE in kinds and (all_turns or last_positions.get(conv_id) == position):
            add(TaskKind.SCORE, conv_id, author_id, msg_id)
        if msg_id in with_kb:
            add(TaskKind.KB_VERIFY, conv_id, author_id, msg_id)
    close_group()
    flush()
    for k in kinds:
        counts[k] = Item.objects.filter(project=project, kind=k).count() - before[k]
    if counts.get(TaskKind.PAIRWISE):
        pairs_created.send(sender=Item, project_id=project.pk)
    return counts


@transaction.atomic
def item_set_gold(*, item: Item, user, answer: dict | None) -> Item:
    """Mark an item as gold with its known answer (or unmark with None). Leads only."""
    require_role(user=user, project=item.project, roles=(Role.LEAD,), action="marking gold items")
    if answer is not None and not isinstance(answer, dict):
        raise ValidationError({"gold_answer": "expected an object"})
    item.is_gold = answer is not None
    item.gold_answer = answer
    item.save(update_fields=["is_gold", "gold_answer"])
    return item


@transaction.atomic
def item_rerate(*, item: Item, user, extra: int = 2) -> Item:
    """Send a contested item back for re-rating: ``extra`` more raters, top priority. Leads only.
    The judgments it has are kept; the new raters are new people (one assignment per rater)."""
    require_role(
        user=user, project=item.project, roles=(Role.LEAD,), action="sending items for re-rating"
    )
    if not 1 <= extra <= 10:
        raise ValidationError({"extra": "ask for 1 to 10 more raters"})
    Item.objects.filter(pk=item.pk).update(
        overlap=F("overlap") + extra, priority=100, is_retired=False
    )
    item.refresh_from_db()
    return item


def consensus_answer(item: Item) -> dict | None:
    """The answer most raters gave (pairwise winner, KB verdict, median scores), or None."""
    from statistics import median

    judgments = list(item.judgments.filter(is_current=True).prefetch_related("scores__criterion"))
    if not judgments:
        return None
    # the rules of ratings/consensus/, which the exports and the KB report use too
    if item.kind == TaskKind.PAIRWISE:
        pair = pairwise_consensus(j.preference for j in judgments)
        return {"winner": pair.winner} if pair.clear else None
    if item.kind == TaskKind.KB_VERIFY:
        kb = kb_consensus(j.verdict for j in judgments)  # cannot_judge abstains
        return {"verdict": kb.verdict} if kb.is_decisive else None
    by_key: dict[str, list[float]] = {}
    for j in judgments:
        for s in j.scores.all():
            if s.value is not None and s.criterion.scale == "likert":
                by_key.setdefault(s.criterion.key, []).append(s.value)
    return (
        {"scores": {k: round(median(v)) for k, v in by_key.items()}, "tolerance": 0}
        if by_key
        else None
    )


@transaction.atomic
def item_promote_consensus(*, item: Item, user) -> Item:
    """Make the raters' consensus the item's gold answer. Leads only; refused on a tie."""
    answer = consensus_answer(item)
    if answer is None:
        raise ValidationError("there is no clear consensus on this item to promote")
    return item_set_gold(item=item, user=user, answer=answer)
