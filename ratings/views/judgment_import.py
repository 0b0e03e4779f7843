"""The lead's page for importing judgments made elsewhere: upload a file, follow its job."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from conversations.models import Project, Role
from conversations.services.access import require_role
from conversations.services.import_jobs import UploadTooLarge
from ratings.forms import JudgmentImportForm
from ratings.models import JudgmentImportJob
from ratings.services.judgment_import.jobs import judgment_import_job_create


@login_required
@require_http_methods(["GET", "POST"])
def judgment_import_upload(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    require_role(
        user=request.user, project=project, roles=(Role.LEAD,), action="importing judgments"
    )
    form = JudgmentImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = judgment_import_job_create(
                project=project,
                user=request.user,
                upload=form.cleaned_data["file"],
                skip_invalid=form.cleaned_data["skip_invalid"],
                count_for_quality=form.cleaned_data["count_for_quality"],
            )
        except UploadTooLarge as exc:
            form.add_error("file", str(exc))
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("ratings:judgment-import-detail", pk=job.pk)
    jobs = project.judgment_import_jobs.all()[:20]
    return render(
        request,
        "ratings/judgment_import.html",
        {"project": project, "form": form, "jobs": jobs, "role": Role.LEAD},
    )


@login_required
@require_http_methods(["GET"])
def judgment_import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(
        JudgmentImportJob.objects.filter(
            project__in=Project.objects.with_role(request.user, Role.LEAD)
        ).select_related("project"),
        pk=pk,
    )
    return render(
        request,
        "ratings/judgment_import_detail.html",
        {"job": job, "project": job.project, "role": Role.LEAD},
    )
