from django import template

register = template.Library()


@register.filter
def likert_points(criterion: dict, values: dict) -> list[tuple[int, str, bool]]:
    """(point, anchor text, checked) for each point of a Likert criterion."""
    current = (values or {}).get(f"score-{criterion['key']}")
    anchors = criterion.get("anchors") or []
    return [
        (p, anchors[p - 1] if p - 1 < len(anchors) else "", str(current) == str(p))
        for p in range(1, (criterion.get("points") or 5) + 1)
    ]


# What the rating form calls the answer's fields, for error messages (criteria by their label).
FIELD_LABELS = {
    "choice": "Overall preference",
    "both_bad": "Both are bad",
    "verdict": "Verdict",
    "corrected_answer": "Corrected answer",
    "missing_fact": "Missing fact",
    "kb_issues": "Article problems",
    "rationale": "Rationale",
    "scores": "Criteria",
}


@register.filter
def errors_for(errors: dict, field: str) -> list[str]:
    """The messages of one field of a service's ValidationError (``errors`` as a dict)."""
    found = (errors or {}).get(field) or []
    return [found] if isinstance(found, str) else list(found)


@register.filter
def error_summary(errors: dict, criteria) -> list[tuple[str, str]]:
    """(field, text) for each error, criteria first in the form's order, each named as the
    rater sees it ("Accuracy is required", "Helpfulness: expected a whole number...")."""
    labels = {f"scores.{c['key']}": c["label"] for c in criteria or []}
    order = [*labels, *(f for f in errors or {} if f not in labels)]
    rows = []
    for field in order:
        messages = errors_for(errors, field)
        if not messages:
            continue
        text = " ".join(messages)
        label = labels.get(field) or FIELD_LABELS.get(field, "")
        if field != "__all__" and label and not text.startswith(label):
            text = f"{label}: {text}"
        rows.append((field, text))
    return rows
