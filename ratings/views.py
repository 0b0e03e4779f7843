"""The rater web UI: rate, skip, my history and edits; the lead's project page and set-up."""

import yaml
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from conversations.models import Message, Project, Role
from conversations.services.access import require_role, role_of
from ratings import charts as charts_mod
from ratings.forms import (
    MemberForm,
    ProjectSettingsForm,
    QueueForm,
    answer_from_post,
    values_from_answer,
)
from ratings.models import Assignment, DriftFlag, Item, Judgment, TaskKind
from ratings.quality_selectors import agreement_series, latest_run, rater_table, rater_trend
from ratings.selectors import project_progress, rater_stats, task_view
from ratings.services.assignments import RATING_ROLES, QueuePaused, assignment_next, assignment_skip
from ratings.services.items import (
    QueueFilter,
    consensus_answer,
    item_promote_consensus,
    item_rerate,
    item_set_gold,
    items_queue,
)
from ratings.services.judgments import (
    AlreadySubmitted,
    current_rubric,
    judgment_revise,
    judgment_submit,
)
from ratings.services.projects import member_add, project_settings_update
from ratings.services.quality import flag_update, quality_request
from ratings.services.rubrics import rubric_set

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
def quality_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    """Leads: agreement over time, the rater table, confusion matrices, contested items."""
    project = _project(request, slug)
    require_role(user=request.user, project=project, roles=(Role.LEAD,), action="seeing quality")
    run = latest_run(project)
    if request.method == "POST":
        quality_request(project=project, user=request.user)
        messages.info(request, "A quality run is queued; refresh in a moment.")
        return redirect("ratings:quality", slug=slug)
    series = agreement_series(project)
    charts = {
        "agreement": charts_mod.line_chart(
            series, title="Agreement over time (95% bootstrap bands)"
        ),
        "confusion": [
            charts_mod.heatmap(
                block["labels"], block["matrix"], title=f"Rater-pair coincidences: {name}"
            )
            for name, block in (run.confusion if run else {}).items()
        ],
    }
    latest = {(a.kind, a.criterion, a.metric): a for a in (run.agreements.all() if run else [])}
    return render(
        request,
        "ratings/quality.html",
        {
            "project": project,
            "run": run,
            "charts": charts,
            "raters": rater_table(project, run),
            "agreements": sorted(latest.values(), key=lambda a: (a.kind, a.criterion, a.metric)),
            "contested": (run.contested if run else [])[:20],
        },
    )


@login_required
def quality_rater(request: HttpRequest, slug: str, rater_id: int) -> HttpResponse:
    project = _project(request, slug)
    require_role(user=request.user, project=project, roles=(Role.LEAD,), action="seeing quality")
    if request.method == "POST":
        flag = get_object_or_404(
            DriftFlag, pk=request.POST.get("flag"), project=project, rater_id=rater_id
        )
        try:
            flag_update(
                flag=flag,
                user=request.user,
                state=request.POST.get("state", ""),
                note=request.POST.get("note", ""),
            )
        except (ValidationError, ValueError) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("ratings:quality-rater", slug=slug, rater_id=rater_id)
    trend, flags = rater_trend(project, rater_id)
    from datetime import date as _date

    chart = charts_mod.line_chart(
        [
            {
                "name": "agreement with consensus (daily)",
                "points": [(_date.fromisoformat(d), a) for d, a, _ in trend],
            }
        ],
        title="Agreement over time, drift flags marked",
        y_range=(0, 1),
        markers=[
            {"at": f["window_start"].date(), "label": f"{f['detector']} ({f['state']})"}
            for f in flags
        ],
    )
    rater = get_object_or_404(get_user_model(), pk=rater_id)
    return render(
        request,
        "ratings/quality_rater.html",
        {"project": project, "rater": rater, "chart": chart, "flags": flags},
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
                item_rerate(item=item, user=request.user, extra=int(request.POST.get("extra", 2)))
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
