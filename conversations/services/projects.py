"""Project creation and membership."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from conversations.models import Membership, Project, Role


@transaction.atomic
def project_get_or_create_for_import(*, slug: str, name: str | None = None) -> Project:
    """The project with this slug, created with defaults when missing (``--create-project``)."""
    project, _ = Project.objects.get_or_create(
        slug=slug, defaults={"name": name or slug.replace("-", " ").title()}
    )
    return project


@transaction.atomic
def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Give ``user`` exactly one ``role`` in ``project`` (replacing a previous role)."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership
