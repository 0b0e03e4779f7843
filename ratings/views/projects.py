"""Home, the lead's project page and settings, and an item's page."""

import yaml
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render

from conversations.models import Message, Project, Role
from conversations.services.access import require_role, role_of
from ratings.forms import (
    MemberForm,
    ProjectSettingsForm,
    QueueForm,
)
from ratings.models import Item, TaskKind
from ratings.selectors import project_progress, rater_stats
from ratings.services.assignments import RATING_ROLES
from ratings.services.items import (
    QueueFilter,
    consensus_answer,
    item_promote_consensus,
    item_rerate,
    item_set_gold,
    items_queue,
)
from ratings.services.judgments import (
    current_rubric,
)
from ratings.services.projects import member_add, project_settings_update
from ratings.services.rubrics import rubric_set
from ratings.views.rating import _errors, _project


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
    return render(request, "ratings/home.html", {"rows": rows})


def _settings_initial(project: Project) -> dict:
    rubric = current_rubric(project)
    criteria = []
    if rubric:
        for c in rubric.criteria.all():
            row = {"key": c.key, "label": c.label, "scale": c.scale}
            if c.description:
                row["description"] = c.description
            if c.scale == "likert":
                row["points"] = c.points
                if c.anchors:
                    row["anchors"] = c.anchors
            if c.options:
                row["options"] = c.options
            if not c.required:
                row["required"] = False
            if c.applies_to and c.applies_to != ["score"]:
                row["applies_to"] = c.applies_to
            criteria.append(row)
    kinds = [
        k
        for k, on in (
            (TaskKind.SCORE, project.has_scoring),
            (TaskKind.PAIRWISE, project.has_pairwise),
            (TaskKind.KB_VERIFY, project.has_kb_verification),
        )
        if on
    ]
    initial = {
        f: getattr(project, f)
        for f in (
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
    }
    initial["task_types"] = kinds
    initial["rubric"] = (
        yaml.safe_dump(criteria, sort_keys=False, allow_unicode=True) if criteria else ""
    )
    return initial


@login_required
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """The lead's set-up page: settings, guidelines, rubric, members, queuing items."""
    project = _project(request, slug)
    require_role(
        user=request.user, project=project, roles=(Role.LEAD,), action="changing project settings"
    )
    settings_form = ProjectSettingsForm(initial=_settings_initial(project))
    member_form, queue_form = (
        MemberForm(),
        QueueForm(initial={"kinds": _settings_initial(project)["task_types"]}),
    )
    action = request.POST.get("action")
    try:
        if request.method == "POST" and action == "settings":
            settings_form = ProjectSettingsForm(request.POST)
            if settings_form.is_valid():
                data = settings_form.cleaned_data
                with transaction.atomic():
                    project_settings_update(
                        project=project,
                        user=request.user,
                        values={k: v for k, v in data.items() if k not in ("task_types", "rubric")},
                        task_types=data["task_types"],
                    )
                    if data["rubric"] != yaml.safe_load(
                        _settings_initial(project)["rubric"] or "[]"
                    ):
                        rubric_set(project=project, user=request.user, criteria=data["rubric"])
                messages.success(request, "Settings saved.")
                return redirect("ratings:settings", slug=slug)
        elif request.method == "POST" and action == "member":
            member_form = MemberForm(request.POST)
            if member_form.is_valid():
                member_add(
                    project=project,
                    user=request.user,
                    username=member_form.cleaned_data["username"],
                    role=member_form.cleaned_data["role"],
                )
                messages.success(
                    request,
                    f"{member_form.cleaned_data['username']} is now {member_form.cleaned_data['role']}.",
                )
                return redirect("ratings:settings", slug=slug)
        elif request.method == "POST" and action == "queue":
            queue_form = QueueForm(request.POST, request.FILES)
            if queue_form.is_valid():
                d = queue_form.cleaned_data
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
                messages.success(
                    request, "Queued: " + ", ".join(f"{n} {k}" for k, n in counts.items())
                )
                return redirect("ratings:settings", slug=slug)
    except ValidationError as exc:
        target = {"settings": settings_form, "member": member_form, "queue": queue_form}[action]
        for field, errs in _errors(exc).items():
            target.add_error(field if field in target.fields else None, errs)
    members = project.memberships.select_related("user").order_by("role", "user__username")
    return render(
        request,
        "ratings/settings.html",
        {
            "project": project,
            "settings_form": settings_form,
            "member_form": member_form,
            "queue_form": queue_form,
            "members": members,
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
