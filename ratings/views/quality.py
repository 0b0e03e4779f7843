"""The leads' quality dashboard and one rater's page."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from conversations.models import Role
from conversations.services.access import require_role
from ratings import charts as charts_mod
from ratings.models import DriftFlag
from ratings.quality_selectors import agreement_series, latest_run, rater_table, rater_trend
from ratings.services.quality import flag_update, quality_request
from ratings.views.rating import _project


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
