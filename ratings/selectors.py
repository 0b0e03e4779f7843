"""Reads that depend on who asks: what a rater sees of a task, progress, personal stats.

A rater's view of a task never carries model names, source metadata, other raters'
judgments, or whether the item is gold.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, F, Q
from django.utils import timezone

from conversations.models import KBReference, Message, Project
from ratings.models import Assignment, AssignmentState, Item, Judgment, TaskKind
from ratings.services.assignments import allowed_kinds
from ratings.services.judgments import NOT_READ, current_rubric


@dataclass(frozen=True)
class ResponseView:
    slot: str  # "response", "left" or "right"
    content: str
    kb_references: list[dict]


def _kb(message_id: int) -> list[dict]:
    return [
        {
            "article_id": r.article_id,
            "title": r.title,
            "url": r.url,
            "version": r.version,
            "snippet": r.snippet,
        }
        for r in KBReference.objects.filter(message_id=message_id).order_by("position")
    ]


def _task_messages(item: Item) -> tuple[list[dict], dict[int, str]]:
    """The context of the item's rated response, and the text of its responses by id."""
    response_ids = [item.response_id, item.response_b_id]
    rows = (
        (Message.objects.context_of(item.response) | Message.objects.filter(pk__in=response_ids))
        .order_by("position", "candidate")
        .values_list("id", "role", "content", "name")
    )
    context, contents = [], {}
    for pk, role, content, name in rows:
        if pk in response_ids:
            contents[pk] = content
        else:
            context.append({"role": role, "content": content, "name": name})
    return context, contents


def task_view(assignment: Assignment) -> dict:
    """Everything the rater needs for this assignment, and nothing that identifies a model.

    No query for an assignment from ``assignment_next`` on PostgreSQL, which comes with its
    item, project, rated response, rubric digest, context and responses' text; one query
    (the context and the responses) on other databases; others load the item too.
    """
    item = assignment.item if Assignment.item.is_cached(assignment) else None
    if item is None or not Item.response.is_cached(item):
        item = (
            Item.objects.select_related("project", "response")
            .only(
                "kind",
                "response_b_id",
                "project__slug",
                "project__guidelines_version",
                "response__conversation_id",
                "response__position",
            )
            .get(pk=assignment.item_id)
        )
    project = item.project
    context, contents = getattr(assignment, "task_messages", None) or _task_messages(item)
    if item.kind == TaskKind.PAIRWISE:
        a, b = contents[item.response_id], contents[item.response_b_id]
        left, right = (a, b) if assignment.left_is_a else (b, a)
        responses = [ResponseView("left", left, []), ResponseView("right", right, [])]
    else:
        responses = [ResponseView("response", contents[item.response_id], _kb(item.response_id))]
    rubric = current_rubric(project, digest=getattr(assignment, "rubric_digest", NOT_READ))
    criteria = [
        {
            "key": c.key,
            "label": c.label,
            "description": c.description,
            "scale": c.scale,
            "points": c.points,
            "anchors": c.anchors,
            "options": c.options,
            "required": c.required,
        }
        for c in (rubric.criteria.all() if rubric else [])
        if item.kind in (c.applies_to or [TaskKind.SCORE])
    ]
    return {
        "assignment_id": assignment.pk,
        "kind": item.kind,
        "project": project.slug,
        "lease_expires_at": assignment.lease_expires_at,
        "context": context,
        "responses": [r.__dict__ for r in responses],
        "rubric_version": rubric.version if rubric else None,
        "criteria": criteria,
        "guidelines_version": project.guidelines_version,
    }


def project_progress(project: Project) -> dict:
    """Items per kind and state, and judgments per rater: the lead's overview."""
    rows = (
        Item.objects.filter(project=project)
        .values("kind")
        .annotate(
            total=Count("id"),
            complete=Count("id", filter=Q(n_done__gte=F("overlap"))),
            in_progress=Count("id", filter=Q(n_active__gt=0) & Q(n_done__lt=F("overlap"))),
            untouched=Count("id", filter=Q(n_active=0, n_done=0)),
            gold=Count("id", filter=Q(is_gold=True)),
        )
    )
    kinds = {r["kind"]: r for r in rows}
    raters = (
        Judgment.objects.filter(item__project=project, is_current=True, is_external=False)
        .values("rater__username")
        .annotate(judgments=Count("id"))
        .order_by("-judgments")
    )
    skipped = dict(
        Assignment.objects.filter(project=project, state=AssignmentState.SKIPPED)
        .values_list("rater__username")
        .annotate(n=Count("id"))
    )
    live = Assignment.objects.filter(
        project=project, state=AssignmentState.LEASED, lease_expires_at__gt=timezone.now()
    ).count()
    return {
        "kinds": kinds,
        "raters": [dict(r, skipped=skipped.get(r["rater__username"], 0)) for r in raters],
        "live_leases": live,
    }


def rater_stats(*, project: Project, rater, role: str) -> dict:
    """A rater's own counts: done today, done in all, remaining items open to them per kind
    (the kinds their role may rate among those the project runs)."""
    now = timezone.localtime()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Judgment.objects.filter(item__project=project, rater=rater, version=1)
    remaining = {}
    runs = TaskKind.run_by(project)
    for kind in (k for k in allowed_kinds(role) if k in runs):
        open_to_me = (
            Item.objects.filter(project=project, kind=kind, queue_rank__isnull=False)
            .exclude(assignments__rater=rater)
            .exclude(author_id_cache=rater.pk)
            .count()
        )
        my_leases = Assignment.objects.filter(
            project=project,
            rater=rater,
            state=AssignmentState.LEASED,
            lease_expires_at__gt=timezone.now(),
            item__kind=kind,
        ).count()
        remaining[kind] = open_to_me + my_leases
    times = list(
        mine.exclude(time_on_task_ms=None).values_list("time_on_task_ms", flat=True)[:1000]
    )
    return {
        "done_today": mine.filter(created_at__gte=start_of_day).count(),
        "done_total": mine.count(),
        "done_last_7_days": mine.filter(created_at__gte=now - timedelta(days=7)).count(),
        "remaining": remaining,
        "median_seconds": (sorted(times)[len(times) // 2] / 1000) if times else None,
    }
