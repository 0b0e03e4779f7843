"""Who may do what in a project. Every service that acts for a user checks here first."""

import functools

from django.core.exceptions import PermissionDenied
from django.db import connection

from config.accel.prepared import prepared_cursor
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


# Long texts the rating path does not need: a project's annotation guide can run to tens of
# kilobytes, and every ``next`` would carry it. They are read on first use.
DEFERRED_PROJECT_FIELDS = ("description", "guidelines")


@functools.cache
def _member_project_query() -> tuple[str, list[str], list]:
    """The SQL of ``project_of_member``, the attnames of the project's columns, and the
    converters the ORM would apply to each column (e.g. aware datetimes on SQLite)."""
    q = connection.ops.quote_name
    fields = [f for f in Project._meta.concrete_fields if f.name not in DEFERRED_PROJECT_FIELDS]
    columns = ", ".join(f"p.{q(f.column)}" for f in fields)
    membership = Membership._meta
    sql = (
        f"SELECT {columns}, m.{q(membership.get_field('role').column)}"
        f" FROM {q(Project._meta.db_table)} p LEFT JOIN {q(membership.db_table)} m"
        f" ON m.{q(membership.get_field('project').column)} = p.{q(Project._meta.pk.column)}"
        f" AND m.{q(membership.get_field('user').column)} = %s"
        f" WHERE p.{q(Project._meta.get_field('slug').column)} = %s"
    )
    converters = []
    for i, field in enumerate(fields):
        col = field.get_col(Project._meta.db_table)
        found = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        if found:
            converters.append((i, col, found))
    return sql, [f.attname for f in fields], converters


def project_of_member(*, user, slug: str) -> Project | None:
    """``Project.objects.with_viewer_role(user).filter(slug=slug).first()``: the project if
    the user may see it (a member, or a superuser), carrying the user's role, else None;
    ``DEFERRED_PROJECT_FIELDS`` are read on first use. Written as one plain query: every API
    call of the rating path starts here, and building the query with the ORM cost more CPU
    than running it."""
    if not user.is_authenticated:
        return None
    sql, attnames, converters = _member_project_query()
    with prepared_cursor() as cursor:
        cursor.execute(sql, [user.pk, slug])
        row = cursor.fetchone()
    if row is None:
        return None
    role = Role.LEAD if user.is_superuser else row[-1]
    if role is None:
        return None
    row = list(row[:-1])
    for i, col, found in converters:
        for converter in found:
            row[i] = converter(row[i], col, connection)
    project = Project.from_db(connection.alias, attnames, row)
    project.viewer_id, project.viewer_role = user.pk, role
    return project


def require_role(*, user, project: Project, roles: tuple[str, ...], action: str) -> str:
    """Return the user's role, or raise PermissionDenied naming the action refused."""
    role = role_of(user=user, project=project)
    if role not in roles:
        raise PermissionDenied(
            f"{action} needs the role {' or '.join(roles)} in project {project.slug!r}"
        )
    return role


def may_create_projects(user) -> bool:
    """Who may start a project (and so become its lead): a superuser, a user granted the
    ``conversations.add_project`` permission (in the admin, directly or through a group), or
    anyone who already leads a project. Staff status alone (admin access) is not enough:
    project roles and admin rights are separate."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.has_perm("conversations.add_project"):
        return True
    return Membership.objects.filter(user=user, role=Role.LEAD).exists()


def require_project_creator(*, user) -> None:
    if not may_create_projects(user):
        raise PermissionDenied(
            "creating a project needs the permission to add projects (an administrator grants"
            " it) or the lead role in another project"
        )
