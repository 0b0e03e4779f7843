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
