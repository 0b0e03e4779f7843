"""Forms: the rating page's fields to a service's answer (and back), and the lead's set-up:
new project, settings, the rubric editor, members, queuing."""

from datetime import date, datetime, time, timedelta

import yaml
from django import forms
from django.http import QueryDict
from django.utils import timezone

from conversations.models import Role, SourceFormat
from ratings.models import Scale, TaskKind


def _day_start(day: date | None) -> datetime | None:
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


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


class ProjectCreateForm(forms.Form):
    """A new project's settings; the set-up page's form adds the rest."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        required=False,
        help_text="Markdown, shown to raters. A change makes a new guidelines version.",
    )
    task_types = forms.MultipleChoiceField(
        label="Task kinds",
        choices=TaskKind.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[TaskKind.SCORE, TaskKind.PAIRWISE],
        error_messages={"required": "Choose at least one kind of task."},
    )
    overlap = forms.IntegerField(
        min_value=1, max_value=50, initial=3, help_text="Raters per item (1 to 50)."
    )
    gold_rate = forms.FloatField(
        min_value=0,
        max_value=1,
        initial=0.05,
        help_text="Share of gold (known-answer) items in a rater's queue, 0 to 1.",
    )


class ProjectSettingsForm(ProjectCreateForm):
    lease_seconds = forms.IntegerField(
        min_value=30,
        max_value=7 * 86400,
        help_text="How long an item stays reserved for the rater who opened it.",
    )
    allow_edits = forms.BooleanField(required=False)
    pause_flagged_raters = forms.BooleanField(required=False)
    show_rater_identities = forms.BooleanField(required=False)


RUBRIC_KINDS = [(TaskKind.SCORE, "Rubric scoring"), (TaskKind.PAIRWISE, "Pairwise (optional)")]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class CriterionForm(forms.Form):
    """One criterion of the rubric editor. The rules (anchors, points, options) are the
    service's (``clean_criteria``); its errors come back next to these fields."""

    label = forms.CharField(max_length=200)
    key = forms.CharField(
        max_length=64,
        required=False,
        help_text="Name in exports; made from the label when empty.",
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="Shown to raters."
    )
    scale = forms.ChoiceField(choices=Scale.choices, initial=Scale.LIKERT)
    points = forms.IntegerField(
        min_value=2, max_value=10, required=False, initial=5, help_text="Likert: 2 to 10."
    )
    anchors = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        help_text="Likert: what each point means, one per line, lowest first; at least the"
        " lowest and the highest (two lines).",
    )
    options = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Choice scales: one option per line.",
    )
    required = forms.BooleanField(required=False, initial=True)
    applies_to = forms.MultipleChoiceField(
        label="Asked in",
        choices=RUBRIC_KINDS,
        widget=forms.CheckboxSelectMultiple,
        initial=[TaskKind.SCORE],
        required=False,
    )

    def has_changed(self) -> bool:
        # A new row counts once it has a label or a key; its other fields have defaults, so
        # a blank row is left out whatever its boxes say.
        if self.empty_permitted:
            return any(str(self[name].data or "").strip() for name in ("label", "key"))
        return super().has_changed()

    def criterion(self) -> dict:
        d = self.cleaned_data
        row = {
            "label": d["label"],
            "key": d.get("key") or "",
            "description": d.get("description") or "",
            "scale": d["scale"],
            "required": bool(d.get("required")),
            "applies_to": d.get("applies_to") or [TaskKind.SCORE],
        }
        if d["scale"] == Scale.LIKERT:
            row["points"] = d.get("points")
            row["anchors"] = _lines(d.get("anchors"))
        if d["scale"] in (Scale.SINGLE_CHOICE, Scale.MULTI_CHOICE):
            row["options"] = _lines(d.get("options"))
        return row

    @staticmethod
    def initial_from(criterion) -> dict:
        return {
            "label": criterion.label,
            "key": criterion.key,
            "description": criterion.description,
            "scale": criterion.scale,
            "points": criterion.points,
            "anchors": "\n".join(criterion.anchors or []),
            "options": "\n".join(criterion.options or []),
            "required": criterion.required,
            "applies_to": criterion.applies_to or [TaskKind.SCORE],
        }


# One blank row to add a criterion; the page's "Add a criterion" button adds more.
CriterionFormSet = forms.formset_factory(CriterionForm, extra=1, can_delete=True)


class RubricYamlForm(forms.Form):
    rubric = forms.CharField(
        label="Rubric as YAML",
        widget=forms.Textarea(attrs={"rows": 14, "class": "mono"}),
        required=False,
        help_text="A YAML list of criteria (see docs/workflow.md). Replaces the whole rubric.",
    )

    def clean_rubric(self):
        text = self.cleaned_data["rubric"]
        try:
            value = yaml.safe_load(text) if text.strip() else []
        except yaml.YAMLError as exc:
            raise forms.ValidationError(f"Not valid YAML: {exc}") from None
        if not isinstance(value, list):
            raise forms.ValidationError("Expected a YAML list of criteria.")
        return value


class MemberAddForm(forms.Form):
    username = forms.CharField(label="User name", max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EVALUATOR)


class MemberInviteForm(forms.Form):
    username = forms.CharField(label="User name", max_length=150)
    email = forms.EmailField(
        required=False, help_text="Optional: the link is mailed too when mail is set up."
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EVALUATOR)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class QueueForm(forms.Form):
    kinds = forms.MultipleChoiceField(
        choices=TaskKind.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    source_format = forms.ChoiceField(choices=[("", "any"), *SourceFormat.choices], required=False)
    model = forms.CharField(required=False)
    occurred_from = forms.DateField(
        label="Conversations from",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="First day, included.",
    )
    occurred_to = forms.DateField(
        label="Conversations to",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Last day, included.",
    )
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
        start, end = data.get("occurred_from"), data.get("occurred_to")
        if start and end and end < start:
            self.add_error("occurred_to", "The last day comes before the first.")
        # Days to the service's half-open datetime window, in the site's time zone.
        data["occurred_from"] = _day_start(start)
        data["occurred_to"] = _day_start(end + timedelta(days=1)) if end else None
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
    count_for_quality = forms.BooleanField(
        required=False,
        help_text="The raters are your team's own: their judgments count for agreement, rater "
        "quality, gold accuracy and drift like judgments made here. Off: they are kept for "
        "rankings only.",
    )
