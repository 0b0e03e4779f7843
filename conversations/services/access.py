"""Who may do what in a project. Every service that acts for a user checks here first."""

from django.core.exceptions import PermissionDenied

from conversations.models import Membership, Project, Role


def role_of(*, user, project: Project) -> str | None:
    """The user's role in the project, or None (superusers act as leads)."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.LEAD
    # Read together with the project by ``Project.objects.with_viewer_role(user)``.
    if getattr(project, "viewer_id", None) == user.pk:
        return project.viewer_role
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def require_role(*, user, project: Project, roles: tuple[str, ...], action: str) -> str:
    """Return the user's role, or raise PermissionDenied naming the action refused."""
    role = role_of(user=user, project=project)
    if role not in roles:
        raise PermissionDenied(
            f"{action} needs the role {' or '.join(roles)} in project {project.slug!r}"
        )
    return role
