"""The exports page for leads and data consumers."""

from datetime import datetime, time, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from conversations.models import Project, Role, SourceFormat
from conversations.services.access import require_role
from exports.exporters import REGISTRY
from exports.models import ExportFormat
from exports.selectors import export_job_list
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
    date_from = forms.DateField(
        required=False,
        label="Judged from",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="First day of judgments to count (the server's time zone).",
    )
    date_to = forms.DateField(
        required=False,
        label="Judged through",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Last day of judgments to count.",
    )
    source = forms.ChoiceField(
        required=False,
        choices=[("", "any source")] + list(SourceFormat.choices),
        help_text="Only conversations imported in this format.",
    )
    model = forms.CharField(
        required=False,
        max_length=200,
        help_text="Only items where either response comes from this model (its name as imported).",
    )
    reveal_raters = forms.BooleanField(
        required=False,
        label="Show rater user names",
        help_text="Leads only; otherwise raters appear as stable pseudonyms.",
    )

    # how the page shows the fields: what to export first, then the rest folded
    GROUPS = (
        ("What", ("format", "file_type", "compress", "aggregation"), True),
        (
            "Which votes and pairs",
            (
                "min_raters",
                "min_agreement",
                "both_bad",
                "exclude_gold",
                "exclude_flagged_raters",
                "include_external",
                "date_from",
                "date_to",
                "source",
                "model",
            ),
            False,
        ),
        (
            "Split, KTO and identities",
            ("test_fraction", "seed", "kto_source", "reveal_raters"),
            False,
        ),
    )

    def groups(self) -> list[tuple[str, list, bool]]:
        """(title, bound fields, open) per group; a group holding an error is open."""
        out = []
        for title, names, is_open in self.GROUPS:
            fields = [self[name] for name in names if name in self.fields]
            out.append((title, fields, is_open or any(f.errors for f in fields)))
        return out

    def __init__(self, *args, role: str, **kwargs):
        super().__init__(*args, **kwargs)
        if role != Role.LEAD:
            del self.fields["reveal_raters"]

    def clean(self):
        data = super().clean()
        zone = timezone.get_current_timezone()
        first, last = data.get("date_from"), data.get("date_to")
        if first and last and last < first:
            self.add_error("date_to", "The last day is before the first.")
        # judgments from the first day's midnight up to (not including) the day after the last
        data["date_from"] = datetime.combine(first, time.min, tzinfo=zone) if first else None
        data["date_to"] = (
            datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone) if last else None
        )
        return data


@login_required
def exports_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    role = require_role(user=request.user, project=project, roles=EXPORT_ROLES, action="exporting")
    form = ExportForm(request.POST or None, initial={"include_external": True}, role=role)
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
    jobs = export_job_list(user=request.user).filter(project=project)[:30]
    running = any(j.state in ("queued", "running") for j in jobs)
    return render(
        request,
        "exports/exports.html",
        {"project": project, "form": form, "jobs": jobs, "running": running, "formats": REGISTRY},
    )


@login_required
def export_download(request: HttpRequest, pk: int, name: str) -> FileResponse:
    job = get_object_or_404(export_job_list(user=request.user), pk=pk)
    try:
        path = export_file_path(job=job, user=request.user, name=name)
    except ValidationError as exc:
        raise PermissionDenied(" ".join(exc.messages)) from None
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)
