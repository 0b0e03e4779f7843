"""Raters' pages: rate, submit, skip, my judgments and their edits, the guidelines."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from conversations.models import Project
from conversations.services.access import role_of
from ratings.forms import (
    answer_from_post,
    values_from_answer,
)
from ratings.models import Assignment, Judgment, TaskKind
from ratings.selectors import rater_stats, task_view
from ratings.services.assignments import (
    QueuePaused,
    allowed_kinds,
    assignment_next,
    assignment_skip,
)
from ratings.services.judgments import (
    SIDE_CHOICES,
    VERDICT_CHOICES,
    AlreadySubmitted,
    answer_as_given,
    answer_text,
    judgment_revise,
    judgment_submit,
)

PREFERENCE_CHOICES = [(c.value, c.label, c.key) for c in SIDE_CHOICES]
VERDICTS = [(verdict.value, verdict.label, key) for verdict, key in VERDICT_CHOICES]


def _project(request: HttpRequest, slug: str) -> Project:
    """The project, if the user is a member (404 otherwise), with the user's role read in the
    same query for the role checks of this request."""
    return get_object_or_404(Project.objects.with_viewer_role(request.user), slug=slug)


def _render_task(
    request, assignment: Assignment, *, values=None, errors=None, judgment=None, status=200
):
    task = task_view(assignment)
    project = assignment.item.project
    role = role_of(user=request.user, project=project)
    kinds = [k for k in TaskKind.run_by(project) if k in allowed_kinds(role)]
    # the other queues, starting after this one: the Q key opens the first
    at = kinds.index(task["kind"]) if task["kind"] in kinds else -1
    queues = [TaskKind(k) for k in kinds[at + 1 :] + kinds[: max(at, 0)]]
    context = {
        "project": project,
        "task": task,
        "values": values or {},
        "errors": errors or {},
        "judgment": judgment,
        "preference_choices": PREFERENCE_CHOICES,
        "verdicts": VERDICTS,
        "queues": queues,
        "stats": rater_stats(project=project, rater=request.user, role=role),
    }
    return render(request, "ratings/rate.html", context, status=status)


def _errors(exc: ValidationError) -> dict:
    return exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}


@login_required
def rate(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    project = _project(request, slug)
    if kind not in TaskKind.values:
        return redirect("home")
    try:
        assignment = assignment_next(project=project, rater=request.user, kind=kind)
    except QueuePaused as exc:
        return render(
            request,
            "ratings/queue_empty.html",
            {"project": project, "kind": kind, "paused": str(exc)},
            status=403,
        )
    if assignment is None:
        return render(request, "ratings/queue_empty.html", {"project": project, "kind": kind})
    return _render_task(request, assignment)


@login_required
@require_POST
def submit(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = get_object_or_404(
        Assignment.objects.select_related("item__project"), pk=pk, rater=request.user
    )
    task = task_view(assignment)
    answer, spent = answer_from_post(request.POST, task["kind"], task["criteria"])
    try:
        judgment_submit(
            assignment=assignment, rater=request.user, answer=answer, time_on_task_ms=spent
        )
    except AlreadySubmitted:
        messages.info(request, "That one was already saved; here is the next.")
        return redirect("ratings:rate", slug=assignment.item.project.slug, kind=task["kind"])
    except ValidationError as exc:
        return _render_task(
            request, assignment, values=values_from_answer(answer), errors=_errors(exc), status=400
        )
    messages.success(request, "Saved.")
    return redirect("ratings:rate", slug=assignment.item.project.slug, kind=task["kind"])


@login_required
@require_POST
def skip(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = get_object_or_404(
        Assignment.objects.select_related("item__project"), pk=pk, rater=request.user
    )
    try:
        assignment_skip(
            assignment=assignment, rater=request.user, reason=request.POST.get("reason", "")
        )
    except ValidationError as exc:
        return _render_task(request, assignment, errors=_errors(exc), status=400)
    messages.info(request, "Skipped: the item goes to someone else.")
    return redirect("ratings:rate", slug=assignment.item.project.slug, kind=assignment.item.kind)


@login_required
def my_judgments(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug)
    judgments = (
        Judgment.objects.filter(item__project=project, rater=request.user)
        .select_related("item")
        .prefetch_related("scores__criterion")
        .order_by("-created_at", "-version")[:200]
    )
    rows = [(j, answer_text(j)) for j in judgments]
    return render(request, "ratings/my_judgments.html", {"project": project, "rows": rows})


@login_required
def edit_judgment(request: HttpRequest, pk: int) -> HttpResponse:
    judgment = get_object_or_404(
        Judgment.objects.select_related("item__project", "assignment"), pk=pk, rater=request.user
    )
    assignment = judgment.assignment
    if assignment is None:
        raise PermissionDenied("imported judgments cannot be edited here")
    if request.method == "POST":
        task = task_view(assignment)
        answer, spent = answer_from_post(request.POST, task["kind"], task["criteria"])
        try:
            judgment_revise(
                judgment=judgment, rater=request.user, answer=answer, time_on_task_ms=spent
            )
        except ValidationError as exc:
            return _render_task(
                request,
                assignment,
                values=values_from_answer(answer),
                errors=_errors(exc),
                judgment=judgment,
                status=400,
            )
        messages.success(request, "Saved as a new version; the previous one is kept.")
        return redirect("ratings:my-judgments", slug=judgment.item.project.slug)
    values = values_from_answer(answer_as_given(judgment))
    return _render_task(request, assignment, values=values, judgment=judgment)


@login_required
def guidelines(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug)
    return render(request, "ratings/guidelines.html", {"project": project})
