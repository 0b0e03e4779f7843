"""Rubric set-up. A rubric with judgments is never changed in place: a new version is made."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from conversations.models import Project, Role
from conversations.services.access import require_role
from ratings.models import Criterion, Judgment, Rubric, Scale, TaskKind


def clean_criteria(criteria: list[dict]) -> list[dict]:
    """Validate a rubric spec (a list of criteria). Raise one ValidationError naming every
    bad field (``rubric[i].field``), so that a form can show them all at once.

    A Likert criterion needs anchors, at least for its end points (what the lowest and the
    highest point mean): one per point, or just the two ends (the middle points then have
    no words, only numbers)."""
    if not isinstance(criteria, list):
        raise ValidationError({"rubric": "expected a list of criteria"})
    clean, keys, errors = [], set(), {}
    for i, c in enumerate(criteria):
        f = f"rubric[{i}]"
        if not isinstance(c, dict):
            errors[f] = "expected an object"
            continue
        label = str(c.get("label") or c.get("key") or "").strip()
        key = slugify(c.get("key") or label).replace("-", "_")
        if not key:
            errors[f"{f}.key"] = "a criterion needs a key or a label"
        elif key in keys:
            errors[f"{f}.key"] = f"duplicate criterion {key!r}"
        keys.add(key)
        scale = c.get("scale", Scale.LIKERT)
        if scale not in Scale.values:
            errors[f"{f}.scale"] = f"expected one of {', '.join(Scale.values)}"
        points, anchors, options = c.get("points"), c.get("anchors") or [], c.get("options") or []
        anchors = [str(a).strip() for a in anchors] if isinstance(anchors, list) else anchors
        if scale == Scale.LIKERT:
            points = points or (len(anchors) if anchors else 5)
            if not isinstance(points, int) or isinstance(points, bool) or not 2 <= points <= 10:
                errors[f"{f}.points"] = "a Likert scale has 2 to 10 points"
            elif not isinstance(anchors, list):
                errors[f"{f}.anchors"] = "expected a list of anchors"
            elif len(anchors) == 2 and points > 2:
                anchors = [anchors[0], *[""] * (points - 2), anchors[1]]
            elif anchors and len(anchors) != points:
                errors[f"{f}.anchors"] = (
                    f"give one anchor per point ({points}), or just the two end points"
                )
            checked = f"{f}.points" not in errors and f"{f}.anchors" not in errors
            if checked and (not anchors or not anchors[0] or not anchors[-1]):
                errors[f"{f}.anchors"] = (
                    "a Likert scale needs anchors for its end points: say what the lowest"
                    " and the highest point mean"
                )
        else:
            points, anchors = None, []
        if scale in (Scale.SINGLE_CHOICE, Scale.MULTI_CHOICE) and len(options) < 2:
            errors[f"{f}.options"] = "a choice scale needs at least two options"
        applies_to = c.get("applies_to") or [TaskKind.SCORE]
        if any(k not in TaskKind.values for k in applies_to):
            errors[f"{f}.applies_to"] = f"expected task kinds from {', '.join(TaskKind.values)}"
        clean.append(
            {
                "key": key,
                "label": label or key,
                "description": str(c.get("description") or ""),
                "scale": scale,
                "points": points,
                "anchors": [str(a) for a in anchors] if isinstance(anchors, list) else [],
                "options": [str(o) for o in options],
                "required": bool(c.get("required", True)),
                "position": i,
                "applies_to": list(applies_to),
            }
        )
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic
def rubric_set(*, project: Project, user, criteria: list[dict]) -> Rubric:
    """Make ``criteria`` the project's rubric. Leads only.

    When the current rubric already has judgments, a new version is created and made current;
    otherwise the current version is edited in place.
    """
    require_role(user=user, project=project, roles=(Role.LEAD,), action="changing the rubric")
    clean = clean_criteria(criteria)
    current = Rubric.objects.select_for_update().filter(project=project, is_current=True).first()
    if current is not None and not Judgment.objects.filter(rubric=current).exists():
        current.criteria.all().delete()
        rubric = current
    else:
        version = 1
        if current is not None:
            version = current.version + 1
            Rubric.objects.filter(pk=current.pk).update(is_current=False)
        rubric = Rubric.objects.create(project=project, version=version, created_by=user)
    Criterion.objects.bulk_create(Criterion(rubric=rubric, **c) for c in clean)
    return rubric
