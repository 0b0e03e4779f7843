"""A project's import history (leads): every upload, newest first, a page at a time."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from conversations.models import Project, Role
from conversations.services.access import require_role


@login_required
def import_history(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    require_role(
        user=request.user, project=project, roles=(Role.LEAD,), action="seeing the imports"
    )
    jobs = project.import_jobs.select_related("created_by").order_by("-created_at", "-id")
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    return render(request, "conversations/import_history.html", {"project": project, "page": page})
