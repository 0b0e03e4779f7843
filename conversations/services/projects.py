"""Project creation and membership: who is in a project, in which role.

A member's removal deletes the membership only: the judgments they gave stay (they belong to
the user, not to the membership), keep counting in agreement and exports, and show under
their name. Their open leases expire as any lease does. A project always keeps one lead.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.services import user_invite
from conversations.models import Membership, Project, Role
from conversations.services.access import require_role


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


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError(
            {"role": f"Choose one of: {', '.join(label for _, label in Role.choices)}."}
        )


def _require_lead(*, project: Project, user, action: str) -> None:
    require_role(user=user, project=project, roles=(Role.LEAD,), action=action)


def _keep_a_lead(*, project: Project, membership: Membership, action: str) -> None:
    """Refuse to leave a project with no lead (its set-up pages would be out of reach)."""
    if membership.role != Role.LEAD:
        return
    others = (
        Membership.objects.select_for_update()
        .filter(project=project, role=Role.LEAD)
        .exclude(pk=membership.pk)
    )
    if not others.exists():
        raise ValidationError(
            f"Cannot {action} {membership.user.get_username()}: the project's only lead."
            " Make someone else lead first."
        )


@transaction.atomic
def member_add(*, project: Project, user, username: str, role: str) -> Membership:
    """Give an existing user a role in the project (or change it). Leads only."""
    _require_lead(project=project, user=user, action="managing members")
    _check_role(role)
    User = get_user_model()
    member = User.objects.filter(**{User.USERNAME_FIELD: (username or "").strip()}).first()
    if member is None:
        raise ValidationError(
            {"username": f"No user {username!r}. To make an account, use “Invite a new user”."}
        )
    existing = Membership.objects.filter(project=project, user=member).first()
    if existing is not None and existing.role != role:
        _keep_a_lead(project=project, membership=existing, action="change the role of")
    return membership_set(project=project, user=member, role=role)


@transaction.atomic
def member_invite(
    *, project: Project, user, username: str, email: str = "", role: str, base_url: str = ""
) -> tuple[Membership, str, bool]:
    """Create an account for a new member and give it ``role``. Leads only.

    Returns (membership, set-password path, mailed): the lead passes the one-time path on,
    and it is mailed to ``email`` too when a mail backend is configured
    (``accounts.services.user_invite``). A taken username -> ValidationError.
    """
    _require_lead(project=project, user=user, action="inviting members")
    _check_role(role)
    member, path, mailed = user_invite(
        username=username, email=email, invited_by=user, base_url=base_url
    )
    return membership_set(project=project, user=member, role=role), path, mailed


@transaction.atomic
def member_role_change(*, project: Project, user, membership_id: int, role: str) -> Membership:
    """Change a member's role. Leads only; the last lead keeps the role."""
    _require_lead(project=project, user=user, action="changing members' roles")
    _check_role(role)
    membership = _membership(project, membership_id)
    if membership.role != role:
        _keep_a_lead(project=project, membership=membership, action="change the role of")
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(*, project: Project, user, membership_id: int) -> AbstractBaseUser:
    """Take a member out of the project; return the user. Leads only; the last lead stays.
    Their judgments are kept (see the module's docstring)."""
    _require_lead(project=project, user=user, action="removing members")
    membership = _membership(project, membership_id)
    _keep_a_lead(project=project, membership=membership, action="remove")
    membership.delete()
    return membership.user


def _membership(project: Project, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(project=project, pk=membership_id)
        .first()
    )
    if membership is None:
        raise ValidationError("No such member in this project.")
    return membership
