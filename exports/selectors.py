"""Reads of export jobs that depend on who asks."""

from django.db.models import Q, QuerySet

from conversations.models import Project, Role
from exports.models import ExportJob
from exports.reports.common import rater_names_visible

EXPORT_ROLES = (Role.LEAD, Role.CONSUMER)


def export_job_list(*, user) -> QuerySet[ExportJob]:
    """The export jobs ``user`` may see (list, status, download; page and API alike): those
    of the projects where the user is a lead or a data consumer, except that a job made with
    real rater names (``reveal_raters``) is seen only by those who may see names in its
    project (``rater_names_visible``: leads, and consumers where the project shows names).
    Everyone else does not learn that it exists."""
    projects = Project.objects.with_viewer_role(user).filter(viewer_role__in=EXPORT_ROLES)
    visible, named = [], []
    for project in projects.only("pk", "show_rater_identities"):
        visible.append(project.pk)
        if rater_names_visible(project=project, role=project.viewer_role):
            named.append(project.pk)
    # spelt positively: a job whose option is anything but false or absent counts as naming
    pseudonymous = Q(options__reveal_raters=False) | Q(options__reveal_raters__isnull=True)
    return ExportJob.objects.filter(project_id__in=visible).filter(
        Q(project_id__in=named) | pseudonymous
    )
