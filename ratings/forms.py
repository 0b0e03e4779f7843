"""Forms: the rating page's fields to a service's answer (and back), and the lead's set-up."""

import yaml
from django import forms
from django.http import QueryDict

from conversations.models import Role, SourceFormat
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


class ProjectSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        required=False,
        help_text="Markdown. A change makes a new guidelines version.",
    )
    task_types = forms.MultipleChoiceField(
        choices=TaskKind.choices, widget=forms.CheckboxSelectMultiple
    )
    overlap = forms.IntegerField(min_value=1, max_value=50)
    gold_rate = forms.FloatField(min_value=0, max_value=1)
    lease_seconds = forms.IntegerField(min_value=30, max_value=7 * 86400)
    allow_edits = forms.BooleanField(required=False)
    pause_flagged_raters = forms.BooleanField(required=False)
    show_rater_identities = forms.BooleanField(required=False)
    rubric = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "class": "mono"}),
        required=False,
        help_text="YAML list of criteria (see docs/workflow.md). Changing a rubric with judgments makes a new version.",
    )

    def clean_rubric(self):
        text = self.cleaned_data["rubric"]
        try:
            value = yaml.safe_load(text) if text.strip() else []
        except yaml.YAMLError as exc:
            raise forms.ValidationError(f"not valid YAML: {exc}") from None
        if not isinstance(value, list):
            raise forms.ValidationError("expected a YAML list of criteria")
        return value


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)


class QueueForm(forms.Form):
    kinds = forms.MultipleChoiceField(
        choices=TaskKind.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    source_format = forms.ChoiceField(choices=[("", "any"), *SourceFormat.choices], required=False)
    model = forms.CharField(required=False)
    occurred_from = forms.DateTimeField(required=False)
    occurred_to = forms.DateTimeField(required=False)
    metadata = forms.CharField(required=False, help_text="key=value, one per line")
    external_ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Conversation ids, one per line (an uploaded list).",
    )
    id_file = forms.FileField(required=False, help_text="Or a text file of conversation ids.")
    priority = forms.IntegerField(min_value=-100, max_value=100, initial=0)

    def clean(self):
        data = super().clean()
        meta = {}
        for line in (data.get("metadata") or "").splitlines():
            if line.strip():
                key, sep, value = line.partition("=")
                if not sep or not key.strip():
                    raise forms.ValidationError({"metadata": f"expected key=value, got {line!r}"})
                meta[key.strip()] = value.strip()
        data["metadata"] = meta
        ids = [x.strip() for x in (data.get("external_ids") or "").splitlines() if x.strip()]
        if data.get("id_file"):
            try:
                ids += [
                    x.strip()
                    for x in data["id_file"].read().decode("utf-8").splitlines()
                    if x.strip()
                ]
            except UnicodeDecodeError:
                raise forms.ValidationError({"id_file": "the id list must be UTF-8 text"}) from None
        data["ids"] = ids or None
        return data


class JudgmentImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL, optionally gzip-compressed.")
    skip_invalid = forms.BooleanField(
        required=False,
        help_text="Import the valid records and keep the invalid ones in a rejects file. "
        "Off: any invalid record means nothing is imported.",
    )
