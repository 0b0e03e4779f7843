"""The exports page for leads and data consumers."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from conversations.models import Project
from conversations.services.access import require_role
from exports.exporters import REGISTRY
from exports.models import ExportFormat, ExportJob
from exports.services import EXPORT_ROLES, export_file_path, export_job_create


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=ExportFormat.choices)
    file_type = forms.ChoiceField(
        choices=[("jsonl", "JSONL"), ("parquet", "Parquet"), ("csv", "CSV")]
    )
    compress = forms.BooleanField(required=False, label="gzip")
    aggregation = forms.ChoiceField(
        choices=[
            ("majority", "majority"),
            ("mean", "mean strength"),
            ("dawid-skene", "Dawid-Skene (reliability-weighted)"),
            ("weighted", "weighted by rater agreement"),
        ]
    )
    min_raters = forms.IntegerField(min_value=1, initial=1)
    min_agreement = forms.FloatField(min_value=0, max_value=1, initial=0)
    both_bad = forms.ChoiceField(
        choices=[("drop", "drop both-bad pairs"), ("keep", "keep (KTO: two negatives)")]
    )
    exclude_gold = forms.BooleanField(required=False)
    exclude_flagged_raters = forms.BooleanField(
        required=False, label="Exclude raters with open drift flags"
    )
    include_external = forms.BooleanField(
        required=False, initial=True, label="Include imported (external) judgments"
    )
    test_fraction = forms.FloatField(
        min_value=0,
        max_value=0.9,
        initial=0,
        help_text="Share of prompts in the test split (0: no split).",
    )
    seed = forms.IntegerField(initial=0)
    kto_source = forms.ChoiceField(
        choices=[
            ("scores", "rubric scores"),
            ("kb", "KB verdicts"),
            ("pairwise", "pairwise decisions"),
        ],
        help_text="KTO only.",
    )


@login_required
def exports_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    require_role(user=request.user, project=project, roles=EXPORT_ROLES, action="exporting")
    form = ExportForm(request.POST or None, initial={"include_external": True})
    if request.method == "POST" and form.is_valid():
        d = dict(form.cleaned_data)
        fmt, file_type, compress = d.pop("format"), d.pop("file_type"), d.pop("compress")
        try:
            export_job_create(
                project=project,
                user=request.user,
                fmt=fmt,
                file_type=file_type,
                compress=compress,
                values=d,
            )
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, " ".join(getattr(exc, "messages", [str(exc)])))
        else:
            messages.success(request, "Export queued. This page refreshes while it runs.")
            return redirect("exports:page", slug=slug)
    jobs = ExportJob.objects.filter(project=project)[:30]
    running = any(j.state in ("queued", "running") for j in jobs)
    return render(
        request,
        "exports/exports.html",
        {"project": project, "form": form, "jobs": jobs, "running": running, "formats": REGISTRY},
    )


@login_required
def export_download(request: HttpRequest, pk: int, name: str) -> FileResponse:
    job = get_object_or_404(
        ExportJob.objects.filter(project__in=Project.objects.visible_to(request.user)), pk=pk
    )
    try:
        path = export_file_path(job=job, user=request.user, name=name)
    except ValidationError as exc:
        raise PermissionDenied(" ".join(exc.messages)) from None
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)
