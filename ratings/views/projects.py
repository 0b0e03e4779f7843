"""Home, the lead's project page and settings, and an item's page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render

from conversations.models import Message, Project, Role
from conversations.services.access import may_create_projects, require_role, role_of
from ratings.forms import ProjectSettingsForm, QueueForm
from ratings.models import Item, TaskKind
from ratings.selectors import project_progress, rater_stats
from ratings.services.assignments import RATING_ROLES
from ratings.services.items import (
    QueueFilter,
    consensus_answer,
    has_score_rubric,
    item_promote_consensus,
    item_rerate,
    item_set_gold,
    items_queue,
)
from ratings.services.projects import project_settings_update
from ratings.views.rating import _project
from ratings.views.setup import add_service_errors


@login_required
def project_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug)
    require_role(
        user=request.user, project=project, roles=(Role.LEAD,), action="seeing the project page"
    )
    return render(
        request, "ratings/project.html", {"project": project, "progress": project_progress(project)}
    )


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """My projects, my role in each, and my queue: done today, remaining per task kind."""
    rows = []
    for project in Project.objects.visible_to(request.user):
        role = role_of(user=request.user, project=project)
        stats = None
        if role in RATING_ROLES:
            stats = rater_stats(project=project, rater=request.user, role=role)
        rows.append({"project": project, "role": role, "stats": stats})
    return render(
        request,
        "ratings/home.html",
        {"rows": rows, "can_create_projects": may_create_projects(request.user)},
    )


SETTINGS_FIELDS = (
    "name",
    "description",
    "guidelines",
    "overlap",
    "gold_rate",
    "lease_seconds",
    "allow_edits",
    "pause_flagged_raters",
    "show_rater_identities",
)


def _settings_initial(project: Project) -> dict:
    initial = {f: getattr(project, f) for f in SETTINGS_FIELDS}
    initial["task_types"] = TaskKind.run_by(project)
    return initial


@login_required
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """The lead's set-up page: settings and guidelines, queuing items (the rubric and the
    members have pages of their own)."""
    project = _project(request, slug)
    require_role(
        user=request.user, project=project, roles=(Role.LEAD,), action="changing project settings"
    )
    settings_form = ProjectSettingsForm(initial=_settings_initial(project))
    queue_form = QueueForm(initial={"kinds": TaskKind.run_by(project)})
    action = request.POST.get("action")
    if request.method == "POST" and action == "settings":
        settings_form = ProjectSettingsForm(request.POST)
        if settings_form.is_valid():
            data = settings_form.cleaned_data
            try:
                project_settings_update(
                    project=project,
                    user=request.user,
                    values={k: v for k, v in data.items() if k != "task_types"},
                    task_types=data["task_types"],
                )
            except ValidationError as exc:
                add_service_errors(settings_form, exc)
            else:
                messages.success(request, "Settings saved.")
                return redirect("ratings:settings", slug=slug)
    elif request.method == "POST" and action == "queue":
        queue_form = QueueForm(request.POST, request.FILES)
        if queue_form.is_valid():
            d = queue_form.cleaned_data
            try:
                counts = items_queue(
                    project=project,
                    user=request.user,
                    kinds=tuple(d["kinds"]) or None,
                    priority=d["priority"] or 0,
                    queue_filter=QueueFilter(
                        source_format=d["source_format"] or None,
                        model=d["model"] or None,
                        occurred_from=d["occurred_from"],
                        occurred_to=d["occurred_to"],
                        metadata=d["metadata"] or None,
                        external_ids=tuple(d["ids"]) if d["ids"] else None,
                    ),
                )
            except ValidationError as exc:
                add_service_errors(queue_form, exc)
            else:
                messages.success(
                    request, "Queued: " + ", ".join(f"{n} {k}" for k, n in counts.items())
                )
                return redirect("ratings:settings", slug=slug)
    return render(
        request,
        "ratings/settings.html",
        {
            "project": project,
            "settings_form": settings_form,
            "queue_form": queue_form,
            "needs_rubric": project.has_scoring and not has_score_rubric(project),
        },
    )


@login_required
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Leads: one item, all its judgments, and the adjudication actions."""
    item = get_object_or_404(
        Item.objects.select_related("project", "response", "response_b"), pk=pk
    )
    project = item.project
    if not Project.objects.visible_to(request.user).filter(pk=project.pk).exists():
        raise Http404
    require_role(
        user=request.user, project=project, roles=(Role.LEAD,), action="adjudicating items"
    )
    if request.method == "POST":
        try:
            if request.POST.get("action") == "rerate":
                extra = request.POST.get("extra") or "2"
                if not (extra.isascii() and extra.isdigit()):
                    return HttpResponseBadRequest(
                        "extra: expected a whole number of raters", content_type="text/plain"
                    )
                item_rerate(item=item, user=request.user, extra=int(extra))
                messages.success(request, "Sent for re-rating.")
            elif request.POST.get("action") == "promote":
                item_promote_consensus(item=item, user=request.user)
                messages.success(request, "The consensus is now this item's gold answer.")
            elif request.POST.get("action") == "ungold":
                item_set_gold(item=item, user=request.user, answer=None)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("ratings:item", pk=pk)
    judgments = (
        item.judgments.select_related("rater")
        .prefetch_related("scores__criterion")
        .order_by("rater__username", "version")
    )
    context = Message.objects.context_of(item.response)
    return render(
        request,
        "ratings/item.html",
        {
            "project": project,
            "item": item,
            "judgments": judgments,
            "context": context,
            "consensus": consensus_answer(item),
        },
    )
