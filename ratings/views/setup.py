"""The lead's set-up pages besides settings: a new project, the rubric editor, members."""

import yaml
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from conversations.models import Role
from conversations.services.access import may_create_projects, require_role
from conversations.services.projects import (
    member_add,
    member_invite,
    member_remove,
    member_role_change,
)
from ratings.forms import (
    CriterionForm,
    CriterionFormSet,
    MemberAddForm,
    MemberInviteForm,
    ProjectCreateForm,
    RubricYamlForm,
)
from ratings.services.judgments import current_rubric
from ratings.services.projects import project_create
from ratings.services.rubrics import rubric_set
from ratings.views.rating import _project


def add_service_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError next to the form's fields it names (else on top)."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for field, messages_ in errors.items():
        form.add_error(field if field in form.fields else None, messages_)


def _rubric_rows(project) -> list[dict]:
    """The current rubric as the spec ``rubric_set`` takes (for YAML export and the form)."""
    rubric = current_rubric(project)
    rows = []
    for c in rubric.criteria.all() if rubric else []:
        row = {"key": c.key, "label": c.label, "scale": c.scale}
        if c.description:
            row["description"] = c.description
        if c.scale == "likert":
            row["points"] = c.points
            row["anchors"] = c.anchors
        if c.options:
            row["options"] = c.options
        if not c.required:
            row["required"] = False
        if c.applies_to and c.applies_to != ["score"]:
            row["applies_to"] = c.applies_to
        rows.append(row)
    return rows


def _id(raw) -> int:
    return int(raw) if raw and str(raw).isdigit() else 0


def rubric_yaml(project) -> str:
    rows = _rubric_rows(project)
    return yaml.safe_dump(rows, sort_keys=False, allow_unicode=True) if rows else ""


@login_required
def project_new(request: HttpRequest) -> HttpResponse:
    """Start a project; its creator becomes its lead (who may: ``may_create_projects``)."""
    if not may_create_projects(request.user):
        raise PermissionDenied(
            "Starting a project needs the permission to add projects (an administrator grants"
            " it) or the lead role in another project."
        )
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = project_create(
                user=request.user,
                values={k: v for k, v in data.items() if k != "task_types"},
                task_types=data["task_types"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request, f"Project “{project.name}” created. Next: its rubric, then members."
            )
            return redirect("ratings:rubric", slug=project.slug)
    return render(request, "ratings/project_new.html", {"form": form})


def _require_lead(request, slug: str, action: str):
    project = _project(request, slug)
    require_role(user=request.user, project=project, roles=(Role.LEAD,), action=action)
    return project


@login_required
def rubric_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """The rubric as a form (criteria added, changed, removed), and as YAML for power users."""
    project = _require_lead(request, slug, "changing the rubric")
    rubric = current_rubric(project)
    initial = [CriterionForm.initial_from(c) for c in rubric.criteria.all()] if rubric else []
    action = request.POST.get("action")
    yaml_form = RubricYamlForm(initial={"rubric": rubric_yaml(project)})
    if request.method == "POST" and action in ("save", "add"):
        formset = CriterionFormSet(request.POST, initial=initial)
        if action == "add":
            data = request.POST.copy()
            data["form-TOTAL_FORMS"] = str(int(data.get("form-TOTAL_FORMS") or 0) + 1)
            formset = CriterionFormSet(data, initial=initial)
        elif formset.is_valid():
            # An untouched blank row has no cleaned data; a ticked "Delete" drops its row.
            kept = [f for f in formset.forms if f.cleaned_data and not f.cleaned_data["DELETE"]]
            try:
                saved = rubric_set(
                    project=project, user=request.user, criteria=[f.criterion() for f in kept]
                )
            except ValidationError as exc:
                _criteria_errors(kept, formset, exc)
            else:
                messages.success(
                    request, f"Rubric saved (version {saved.version}, {len(kept)} criteria)."
                )
                return redirect("ratings:rubric", slug=slug)
    else:
        formset = CriterionFormSet(initial=initial)
        if request.method == "POST" and action == "yaml":
            yaml_form = RubricYamlForm(request.POST)
            if yaml_form.is_valid():
                try:
                    saved = rubric_set(
                        project=project,
                        user=request.user,
                        criteria=yaml_form.cleaned_data["rubric"],
                    )
                except ValidationError as exc:
                    add_service_errors(yaml_form, _flatten(exc, "rubric"))
                else:
                    messages.success(request, f"Rubric imported (version {saved.version}).")
                    return redirect("ratings:rubric", slug=slug)
    return render(
        request,
        "ratings/rubric.html",
        {"project": project, "formset": formset, "yaml_form": yaml_form, "rubric": rubric},
    )


def _criteria_errors(kept: list, formset, exc: ValidationError) -> None:
    """``rubric[i].field`` errors from the service go to the i-th kept criterion's field."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    for name, msgs in errors.items():
        index, _, field = name.partition("].")
        if name.startswith("rubric[") and index[7:].isdigit() and int(index[7:]) < len(kept):
            form = kept[int(index[7:])]
            form.add_error(field if field in form.fields else None, msgs)
        else:
            formset._non_form_errors = formset.error_class([*formset.non_form_errors(), *msgs])


def _flatten(exc: ValidationError, field: str) -> ValidationError:
    """Every error of the service on one form field, each prefixed by the place it names."""
    if not hasattr(exc, "error_dict"):
        return ValidationError({field: exc.messages})
    return ValidationError(
        {field: [f"{name}: {msg}" for name, msgs in exc.message_dict.items() for msg in msgs]}
    )


@login_required
def rubric_download(request: HttpRequest, slug: str) -> HttpResponse:
    project = _require_lead(request, slug, "reading the rubric")
    response = HttpResponse(rubric_yaml(project), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-rubric.yaml"'
    return response


@login_required
def members(request: HttpRequest, slug: str) -> HttpResponse:
    """Members: add an existing user, invite a new one (a one-time set-password link),
    change a role, remove a member (their judgments stay)."""
    project = _require_lead(request, slug, "managing members")
    add_form, invite_form = MemberAddForm(prefix="add"), MemberInviteForm(prefix="invite")
    invited = None
    action = request.POST.get("action")
    if request.method == "POST":
        try:
            if action == "add":
                add_form = MemberAddForm(request.POST, prefix="add")
                if add_form.is_valid():
                    m = member_add(project=project, user=request.user, **add_form.cleaned_data)
                    messages.success(
                        request, f"{m.user.get_username()} is now {m.get_role_display()}."
                    )
                    return redirect("ratings:members", slug=slug)
            elif action == "invite":
                invite_form = MemberInviteForm(request.POST, prefix="invite")
                if invite_form.is_valid():
                    m, path, mailed = member_invite(
                        project=project,
                        user=request.user,
                        base_url=request.build_absolute_uri("/").rstrip("/"),
                        **invite_form.cleaned_data,
                    )
                    invited = {
                        "username": m.user.get_username(),
                        "role": m.get_role_display(),
                        "link": request.build_absolute_uri(path),
                        "mailed_to": m.user.email if mailed else "",
                    }
                    invite_form = MemberInviteForm(prefix="invite")
            elif action == "role":
                m = member_role_change(
                    project=project,
                    user=request.user,
                    membership_id=_id(request.POST.get("membership")),
                    role=request.POST.get("role", ""),
                )
                messages.success(request, f"{m.user.get_username()} is now {m.get_role_display()}.")
                return redirect("ratings:members", slug=slug)
            elif action == "remove":
                gone = member_remove(
                    project=project,
                    user=request.user,
                    membership_id=_id(request.POST.get("membership")),
                )
                messages.success(
                    request,
                    f"{gone.get_username()} is no longer a member; their judgments are kept.",
                )
                if gone == request.user:
                    return redirect("home")
                return redirect("ratings:members", slug=slug)
        except ValidationError as exc:
            form = {"add": add_form, "invite": invite_form}.get(action)
            if form is not None:
                add_service_errors(form, exc)
            else:
                messages.error(request, " ".join(exc.messages))
                return redirect("ratings:members", slug=slug)
    rows = project.memberships.select_related("user").order_by("role", "user__username")
    return render(
        request,
        "ratings/members.html",
        {
            "project": project,
            "rows": rows,
            "roles": Role.choices,
            "add_form": add_form,
            "invite_form": invite_form,
            "invited": invited,
        },
    )
