"""Projects from a spec file (reproducible campaigns) and from the lead's settings form."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from conversations.models import Project, Role
from conversations.services.access import require_project_creator, require_role
from conversations.services.projects import member_add, membership_set
from ratings.models import TaskKind
from ratings.services.rubrics import clean_criteria, rubric_set

__all__ = [
    "clean_settings",
    "member_add",
    "project_create",
    "project_create_from_spec",
    "project_settings_update",
]
SETTINGS_FIELDS = {
    "name": str,
    "description": str,
    "guidelines": str,
    "overlap": int,
    "gold_rate": float,
    "lease_seconds": int,
    "allow_edits": bool,
    "pause_flagged_raters": bool,
    "show_rater_identities": bool,
}
# Path segments of the web UI that a project's slug must not take (``/projects/new/``).
RESERVED_SLUGS = {"new"}
SPEC_KEYS = {"slug", "task_types", "rubric", "members", "guidelines_file", *SETTINGS_FIELDS}


def clean_settings(values: dict) -> dict:
    """Check project settings; raise ValidationError naming each bad field."""
    clean = {}
    for key, value in values.items():
        kind = SETTINGS_FIELDS.get(key)
        if kind is None:
            continue
        if kind is bool and not isinstance(value, bool):
            raise ValidationError({key: "expected true or false"})
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValidationError({key: "expected a number"})
        if kind is str and not isinstance(value, str):
            raise ValidationError({key: "expected text"})
        clean[key] = kind(value)
    if "overlap" in clean and not 1 <= clean["overlap"] <= 50:
        raise ValidationError({"overlap": "expected 1 to 50 raters per item"})
    if "gold_rate" in clean and not 0 <= clean["gold_rate"] <= 1:
        raise ValidationError({"gold_rate": "expected a share from 0 to 1"})
    if "lease_seconds" in clean and not 30 <= clean["lease_seconds"] <= 7 * 86400:
        raise ValidationError({"lease_seconds": "expected 30 seconds to 7 days"})
    if "name" in clean and not clean["name"].strip():
        raise ValidationError({"name": "must not be empty"})
    return clean


def _task_flags(task_types) -> dict:
    if not isinstance(task_types, list) or not task_types:
        raise ValidationError(
            {"task_types": f"expected a non-empty list from {', '.join(TaskKind.values)}"}
        )
    bad = [t for t in task_types if t not in TaskKind.values]
    if bad:
        raise ValidationError(
            {"task_types": f"unknown task types {bad}; expected {', '.join(TaskKind.values)}"}
        )
    return {
        "has_scoring": TaskKind.SCORE in task_types,
        "has_pairwise": TaskKind.PAIRWISE in task_types,
        "has_kb_verification": TaskKind.KB_VERIFY in task_types,
    }


@transaction.atomic
def project_settings_update(
    *, project: Project, user, values: dict, task_types: list | None = None
) -> Project:
    """Change a project's settings. Leads only. A guidelines change bumps its version; a new
    overlap applies to items queued from now on (existing items keep theirs)."""
    require_role(user=user, project=project, roles=(Role.LEAD,), action="changing project settings")
    clean = clean_settings(values)
    if task_types is not None:
        clean.update(_task_flags(task_types))
    if "guidelines" in clean and clean["guidelines"] != project.guidelines:
        project.guidelines_version += 1
    for key, value in clean.items():
        setattr(project, key, value)
    project.save()
    return project


@transaction.atomic
def project_create_from_spec(
    *, spec: dict, base_dir: Path | None = None, update: bool = False, user=None
) -> tuple[Project, list[str]]:
    """Create (or with ``update``, update) a project from a spec; return it and a log.

    The spec names settings, task types, the rubric and members (users are created when
    missing, with no usable password: an admin sets one). An existing slug is refused unless
    ``update`` is given, so a campaign is never overwritten by accident. All or nothing.
    """
    if not isinstance(spec, dict):
        raise ValidationError("the spec must be a mapping")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ValidationError({"spec": f"unknown keys: {', '.join(sorted(unknown))}"})
    slug = spec.get("slug") or slugify(spec.get("name", ""))
    if not slug:
        raise ValidationError({"slug": "give a slug or a name"})
    values = {k: spec[k] for k in SETTINGS_FIELDS if k in spec}
    if "guidelines_file" in spec:
        path = Path(spec["guidelines_file"])
        path = path if path.is_absolute() else (base_dir or Path.cwd()) / path
        if not path.is_file():
            raise ValidationError({"guidelines_file": f"{path}: no such file"})
        values["guidelines"] = path.read_text(encoding="utf-8")
    clean = clean_settings(values)
    flags = _task_flags(spec.get("task_types", ["score", "pairwise"]))
    criteria = clean_criteria(spec.get("rubric", []))
    log = []
    project = Project.objects.filter(slug=slug).first()
    if project is not None and not update:
        raise ValidationError({"slug": f"project {slug!r} exists; pass --update to change it"})
    if project is None:
        project = Project.objects.create(
            slug=slug, name=clean.pop("name", slug), created_by=user, **clean, **flags
        )
        log.append(f"created project {slug}")
    else:
        for key, value in {**clean, **flags}.items():
            setattr(project, key, value)
        project.save()
        log.append(f"updated project {slug}")
    User = get_user_model()
    lead = user
    for i, m in enumerate(spec.get("members", [])):
        if not isinstance(m, dict) or not m.get("username") or m.get("role") not in Role.values:
            raise ValidationError(
                {
                    f"members[{i}]": f"expected {{username, role}} with role one of {', '.join(Role.values)}"
                }
            )
        member, created = User.objects.get_or_create(
            username=m["username"], defaults={"email": m.get("email", "")}
        )
        if created:
            member.set_unusable_password()
            member.save()
            log.append(f"created user {member.username} (no password yet)")
        membership_set(project=project, user=member, role=m["role"])
        if m["role"] == Role.LEAD and lead is None:
            lead = member
    if criteria:
        if lead is None:
            raise ValidationError(
                {"members": "a spec with a rubric needs a lead among its members"}
            )
        rubric = rubric_set(project=project, user=lead, criteria=spec["rubric"])
        log.append(f"rubric version {rubric.version} with {len(criteria)} criteria")
    return project, log


@transaction.atomic
def project_create(*, user, values: dict, task_types: list) -> Project:
    """Start a project from the web form and make ``user`` its lead. Allowed to the users
    ``conversations.services.access.may_create_projects`` names. The slug comes from the
    name (``-2``, ``-3``... when taken). Bad settings or task types -> ValidationError."""
    require_project_creator(user=user)
    clean = clean_settings(values)
    if not clean.get("name", "").strip():
        raise ValidationError({"name": "Give the project a name."})
    flags = _task_flags(task_types)
    base = slugify(clean["name"])[:70] or "project"
    slug, n = base, 1
    while slug in RESERVED_SLUGS or Project.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    project = Project.objects.create(slug=slug, created_by=user, **clean, **flags)
    membership_set(project=project, user=user, role=Role.LEAD)
    return project
