"""Turn the rating page's form fields into the answer a service takes, and back."""

from django.http import QueryDict

from ratings.models import Scale, TaskKind


def answer_from_post(post: QueryDict, kind: str, criteria: list[dict]) -> tuple[dict, int | None]:
    """Return (answer, time_on_task_ms) from the rating form. Validation is the service's job."""
    answer: dict = {"rationale": post.get("rationale", "")}
    scores: dict = {}
    for c in criteria:
        name = f"score-{c['key']}"
        if kind == TaskKind.PAIRWISE:
            if post.get(name):
                scores[c["key"]] = post[name]
        elif c["scale"] == Scale.MULTI_CHOICE:
            scores[c["key"]] = post.getlist(name)
        elif c["scale"] == Scale.LIKERT:
            raw = post.get(name, "")
            scores[c["key"]] = int(raw) if raw.isdigit() else (raw or None)
        else:
            scores[c["key"]] = post.get(name) or None
    answer["scores"] = scores
    if kind == TaskKind.PAIRWISE:
        answer["choice"] = post.get("choice", "")
        answer["both_bad"] = post.get("both_bad") == "on"
    elif kind == TaskKind.KB_VERIFY:
        answer.pop("scores")
        answer["verdict"] = post.get("verdict", "")
        answer["corrected_answer"] = post.get("corrected_answer", "")
        answer["missing_fact"] = post.get("missing_fact", "")
        issues = []
        for key, value in post.items():
            if key.startswith("kb-issue-") and value:
                issues.append({"article_id": key.removeprefix("kb-issue-"), "problem": value})
        if post.get("kb-missing-article", "").strip():
            issues.append({"article_id": post["kb-missing-article"].strip(), "problem": "missing"})
        answer["kb_issues"] = issues
    raw_time = post.get("time_on_task_ms", "")
    return answer, (int(raw_time) if raw_time.isdigit() else None)


def values_from_answer(answer: dict) -> dict:
    """Flatten an answer to {field name: value(s)} so the form can show what was entered."""
    values = {f"score-{k}": v for k, v in (answer.get("scores") or {}).items()}
    for key in ("choice", "verdict", "corrected_answer", "missing_fact", "rationale"):
        if answer.get(key):
            values[key] = answer[key]
    values["both_bad"] = bool(answer.get("both_bad"))
    for issue in answer.get("kb_issues") or []:
        values[f"kb-issue-{issue.get('article_id')}"] = issue.get("problem")
    return values
