"""The leads' quality dashboard and one rater's page."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from conversations.models import Role
from conversations.services.access import require_role
from ratings import charts as charts_mod
from ratings.models import DriftFlag, FlagState, QualityRun
from ratings.quality_selectors import (
    agreement_series,
    latest_run,
    project_rater,
    rater_table,
    rater_trend,
)
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
        messages.info(request, "A quality run is queued; this page refreshes when it ends.")
        return redirect(reverse("ratings:quality", args=[slug]) + "?waiting=1")
    series = agreement_series(project)
    charts = {
        "agreement": charts_mod.line_chart(
            series,
            title="Agreement over time (95% bootstrap bands)",
            bounds=(-1.0, 1.0),
            y_title="Agreement",
        ),
        "confusion": [
            charts_mod.heatmap(
                block["labels"],
                block["matrix"],
                title=f"Rater-pair coincidences: {charts_mod.confusion_title(name)}",
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
            # below this many items an agreement figure is shown greyed, with a note
            "min_items": settings.QUALITY_MIN_SHARED_ITEMS,
            # after "Run the quality check now" the page polls the run's state (quality.js)
            "waiting": request.GET.get("waiting") == "1",
            "newest_run": QualityRun.objects.filter(project=project).first(),
        },
    )


class FlagForm(forms.Form):
    """A lead's change to one drift flag (the rater page's row form)."""

    flag = forms.IntegerField(min_value=1)
    state = forms.ChoiceField(choices=FlagState.choices)
    note = forms.CharField(required=False, max_length=2000)


@login_required
def quality_rater(request: HttpRequest, slug: str, rater_id: int) -> HttpResponse:
    """One rater's agreement over time and drift flags. Only the project's own people: any
    other user id is 404, so a lead cannot read names of users outside the project."""
    project = _project(request, slug)
    require_role(user=request.user, project=project, roles=(Role.LEAD,), action="seeing quality")
    rater = project_rater(project, rater_id)
    if rater is None:
        raise Http404("no such rater in this project")
    if request.method == "POST":
        form = FlagForm(request.POST)
        if not form.is_valid():
            return HttpResponseBadRequest(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
                content_type="text/plain",
            )
        flag = get_object_or_404(
            DriftFlag, pk=form.cleaned_data["flag"], project=project, rater_id=rater.pk
        )
        try:
            flag_update(
                flag=flag,
                user=request.user,
                state=form.cleaned_data["state"],
                note=form.cleaned_data["note"],
            )
        except (ValidationError, ValueError) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("ratings:quality-rater", slug=slug, rater_id=rater.pk)
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
        y_title="Agreement",
        markers=[
            {"at": f["window_start"].date(), "label": f"{f['detector']} ({f['state']})"}
            for f in flags
        ],
    )
    return render(
        request,
        "ratings/quality_rater.html",
        {"project": project, "rater": rater, "chart": chart, "flags": flags},
    )
