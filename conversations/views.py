"""Web pages of the conversations app: home, project list, transcript upload (leads)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from conversations.forms import ImportUploadForm
from conversations.models import ImportJob, Project, Role
from conversations.services.access import require_role
from conversations.services.import_jobs import UploadTooLarge, import_job_create


@login_required
def import_upload(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    require_role(
        user=request.user, project=project, roles=(Role.LEAD,), action="importing transcripts"
    )
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_job_create(
                project=project,
                user=request.user,
                upload=form.cleaned_data["file"],
                fmt=form.cleaned_data["format"] or None,
                skip_invalid=form.cleaned_data["skip_invalid"],
            )
        except UploadTooLarge as exc:
            form.add_error("file", str(exc))
        except (ValueError, PermissionDenied) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("import-detail", pk=job.pk)
    jobs = project.import_jobs.all()[:20]
    return render(
        request,
        "conversations/import_upload.html",
        {"project": project, "form": form, "jobs": jobs},
    )


@login_required
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(
        ImportJob.objects.filter(project__in=Project.objects.with_role(request.user, Role.LEAD)),
        pk=pk,
    )
    return render(request, "conversations/import_detail.html", {"job": job, "project": job.project})
