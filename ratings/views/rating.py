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
from ratings.services.assignments import QueuePaused, assignment_next, assignment_skip
from ratings.services.judgments import (
    AlreadySubmitted,
    judgment_revise,
    judgment_submit,
)

PREFERENCE_CHOICES = [
    ("left_much_better", "Left much better", "Shift+A"),
    ("left_better", "Left better", "A"),
    ("tie", "Tie", "T"),
    ("right_better", "Right better", "B"),
    ("right_much_better", "Right much better", "Shift+B"),
]
VERDICTS = [
    ("correct", "Correct", "C"),
    ("incorrect", "Incorrect", "I"),
    ("incomplete", "Incomplete", "N"),
    ("cannot_judge", "Cannot judge", "J"),
]


def _project(request: HttpRequest, slug: str) -> Project:
    """The project, if the user is a member (404 otherwise), with the user's role read in the
    same query for the role checks of this request."""
    return get_object_or_404(Project.objects.with_viewer_role(request.user), slug=slug)


def _render_task(
    request, assignment: Assignment, *, values=None, errors=None, judgment=None, status=200
):
    task = task_view(assignment)
    project = assignment.item.project
    context = {
        "project": project,
        "task": task,
        "values": values or {},
        "errors": errors or {},
        "judgment": judgment,
        "preference_choices": PREFERENCE_CHOICES,
        "verdicts": VERDICTS,
        "stats": rater_stats(
            project=project, rater=request.user, role=role_of(user=request.user, project=project)
        ),
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
    return render(
        request, "ratings/my_judgments.html", {"project": project, "judgments": judgments}
    )


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
    values = _judgment_values(judgment)
    return _render_task(request, assignment, values=values, judgment=judgment)


def _judgment_values(judgment: Judgment) -> dict:
    """The judgment as the rater entered it (sides as they were shown)."""
    flip = 1 if judgment.left_is_a in (True, None) else -1
    names = {
        -2: "left_much_better",
        -1: "left_better",
        0: "tie",
        1: "right_better",
        2: "right_much_better",
    }
    values = {
        "rationale": judgment.rationale,
        "both_bad": judgment.both_bad,
        "verdict": judgment.verdict,
        "corrected_answer": judgment.corrected_answer,
        "missing_fact": judgment.missing_fact,
    }
    if judgment.preference is not None:
        values["choice"] = names[flip * judgment.preference]
    for s in judgment.scores.select_related("criterion"):
        key = f"score-{s.criterion.key}"
        if judgment.item.kind == TaskKind.PAIRWISE and s.value is not None:
            values[key] = names[int(flip * s.value)]
        elif s.choices:
            values[key] = s.choices if s.criterion.scale == "multi_choice" else s.choices[0]
        elif s.text:
            values[key] = s.text
        elif s.value is not None:
            values[key] = (
                int(s.value) if s.criterion.scale == "likert" else ("yes" if s.value else "no")
            )
    for issue in judgment.kb_issues:
        values[f"kb-issue-{issue['article_id']}"] = issue["problem"]
    return values


@login_required
def guidelines(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug)
    return render(request, "ratings/guidelines.html", {"project": project})
