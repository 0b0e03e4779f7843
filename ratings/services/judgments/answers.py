"""An answer checked against the rubric it was made under; the project's current rubric."""

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError

from conversations.models import Project
from ratings.models import (
    Criterion,
    Item,
    Preference,
    Rubric,
    Scale,
    TaskKind,
    Verdict,
)


@dataclass(frozen=True)
class SideChoice:
    """One pairwise answer as the rater sees it: sides shown, not the true A/B."""

    value: str  # what the form and the API send
    shown: int  # display terms: negative = the left response is better
    label: str
    key: str  # the keyboard shortcut on the rating page


# The one declaration of the left/right display of pairwise answers: the rating form, its
# keys, the validation, "My judgments" (page and API) and the judgment import all read it.
SIDE_CHOICES = (
    SideChoice("left_much_better", -2, "Left much better", "Shift+A"),
    SideChoice("left_better", -1, "Left better", "A"),
    SideChoice("tie", 0, "Tie", "T"),
    SideChoice("right_better", 1, "Right better", "B"),
    SideChoice("right_much_better", 2, "Right much better", "Shift+B"),
)
DISPLAY_CHOICES = {c.value: c.shown for c in SIDE_CHOICES}
SIDE_BY_SHOWN = {c.shown: c for c in SIDE_CHOICES}
VERDICT_CHOICES = (
    (Verdict.CORRECT, "C"),
    (Verdict.INCORRECT, "I"),
    (Verdict.INCOMPLETE, "N"),
    (Verdict.CANNOT_JUDGE, "J"),
)
KB_PROBLEMS = ("wrong", "outdated", "missing")


class AlreadySubmitted(ValidationError):
    """The assignment was already submitted (a repeated submit): edit the judgment instead."""


class NotYourAssignment(PermissionDenied):
    """The assignment belongs to another rater."""


@dataclass(frozen=True)
class CleanAnswer:
    scores: list[tuple[Criterion, float | None, list, str]]
    preference: int | None = None
    both_bad: bool = False
    verdict: str = ""
    corrected_answer: str = ""
    missing_fact: str = ""
    kb_issues: tuple = ()
    rationale: str = ""


# The digest of a project's current rubric and its criteria, as a scalar subquery on
# PostgreSQL; ``{project}`` is the SQL expression of the project's id. Editing a rubric (in
# place or as a new version) or any of its criteria changes the digest, and since criteria
# and rubrics never get their ids back a digest never comes back either: the rubric read under
# a digest is the rubric for as long as the database gives that digest.
RUBRIC_DIGEST_SQL = (
    "(SELECT md5(r::text || coalesce(string_agg(c::text, ',' ORDER BY c.id), ''))"
    f" FROM {Rubric._meta.db_table} r LEFT JOIN {Criterion._meta.db_table} c ON c.rubric_id = r.id"
    " WHERE r.project_id = {project} AND r.is_current GROUP BY r.id)"
)
NOT_READ = object()
_RUBRICS: dict[tuple[int, str], Rubric] = {}
_RUBRICS_MAX = 256


def current_rubric(project: Project, *, digest: str | None | object = NOT_READ) -> Rubric | None:
    """The project's current rubric with its criteria (None when it has none).

    ``digest`` is what ``RUBRIC_DIGEST_SQL`` gave in the caller's own query: with it, the
    rubric comes from a per-process cache and costs no query (None: the project has no current
    rubric). Without it, the rubric is read. Cached rubrics are shared between requests and
    threads: read them, never change them.
    """
    if digest is NOT_READ:
        return project.rubrics.filter(is_current=True).prefetch_related("criteria").first()
    if digest is None:
        return None
    key = (project.pk, digest)
    rubric = _RUBRICS.get(key)
    if rubric is None:
        rubric = project.rubrics.filter(is_current=True).prefetch_related("criteria").first()
        if rubric is None:
            return None
        if len(_RUBRICS) >= _RUBRICS_MAX:
            _RUBRICS.clear()
        _RUBRICS[key] = rubric
    return rubric


def _criterion_value(criterion: Criterion, raw, field: str) -> tuple[float | None, list, str]:
    """Check one criterion's answer against its scale; return (value, choices, text)."""
    if criterion.scale == Scale.LIKERT:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or int(raw) != raw:
            raise ValidationError({field: f"expected a whole number from 1 to {criterion.points}"})
        if not 1 <= raw <= criterion.points:
            raise ValidationError({field: f"expected a whole number from 1 to {criterion.points}"})
        return float(raw), [], ""
    if criterion.scale == Scale.BINARY:
        if raw in (True, 1, "yes", "true", "1"):
            return 1.0, [], ""
        if raw in (False, 0, "no", "false", "0"):
            return 0.0, [], ""
        raise ValidationError({field: "expected yes or no"})
    if criterion.scale == Scale.SINGLE_CHOICE:
        if raw not in criterion.options:
            raise ValidationError(
                {field: f"expected one of {', '.join(map(str, criterion.options))}"}
            )
        return float(criterion.options.index(raw)), [raw], ""
    if criterion.scale == Scale.MULTI_CHOICE:
        if not isinstance(raw, list) or any(r not in criterion.options for r in raw):
            raise ValidationError(
                {field: f"expected a list drawn from {', '.join(map(str, criterion.options))}"}
            )
        return None, sorted(set(raw), key=criterion.options.index), ""
    if not isinstance(raw, str):
        raise ValidationError({field: "expected text"})
    return None, [], raw.strip()


def _is_blank(raw) -> bool:
    return raw is None or raw == "" or raw == []


def clean_answer(
    *, item: Item, rubric: Rubric | None, answer: dict, left_is_a: bool
) -> CleanAnswer:
    """Validate a rater's answer for this item; raise ValidationError naming each bad field."""
    if not isinstance(answer, dict):
        raise ValidationError("the answer must be an object")
    rationale = answer.get("rationale") or ""
    if not isinstance(rationale, str):
        raise ValidationError({"rationale": "expected text"})
    criteria = list(rubric.criteria.all()) if rubric else []
    raw_scores = answer.get("scores") or {}
    if not isinstance(raw_scores, dict):
        raise ValidationError({"scores": "expected an object of criterion: answer"})
    unknown = set(raw_scores) - {c.key for c in criteria}
    if unknown:
        raise ValidationError({"scores": f"unknown criteria: {', '.join(sorted(unknown))}"})

    if item.kind == TaskKind.SCORE:
        # Every missing or invalid criterion at once, so that a form can mark them all.
        scores, errors = [], {}
        for c in criteria:
            raw = raw_scores.get(c.key)
            if _is_blank(raw):
                if c.required:
                    errors[f"scores.{c.key}"] = f"{c.label} is required"
                continue
            try:
                scores.append((c, *_criterion_value(c, raw, f"scores.{c.key}")))
            except ValidationError as exc:
                errors.update(exc.message_dict)
        if errors:
            raise ValidationError(errors)
        return CleanAnswer(scores=scores, rationale=rationale)

    if item.kind == TaskKind.PAIRWISE:
        choice = answer.get("choice")
        if choice not in DISPLAY_CHOICES:
            raise ValidationError({"choice": f"expected one of {', '.join(DISPLAY_CHOICES)}"})
        both_bad = answer.get("both_bad", False)
        if not isinstance(both_bad, bool):
            raise ValidationError({"both_bad": "expected true or false"})
        flip = 1 if left_is_a else -1  # display terms (negative = left better) to true A/B terms
        scores = []
        for key, raw in raw_scores.items():
            if _is_blank(raw):
                continue
            if raw not in DISPLAY_CHOICES:
                raise ValidationError(
                    {f"scores.{key}": f"expected one of {', '.join(DISPLAY_CHOICES)}"}
                )
            c = next(c for c in criteria if c.key == key)
            scores.append((c, float(flip * DISPLAY_CHOICES[raw]), [], ""))
        return CleanAnswer(
            scores=scores,
            preference=flip * DISPLAY_CHOICES[choice],
            both_bad=both_bad,
            rationale=rationale,
        )

    verdict = answer.get("verdict")
    if verdict not in Verdict.values:
        raise ValidationError({"verdict": f"expected one of {', '.join(Verdict.values)}"})
    corrected = answer.get("corrected_answer") or ""
    missing = answer.get("missing_fact") or ""
    if not isinstance(corrected, str) or not isinstance(missing, str):
        raise ValidationError("corrected_answer and missing_fact are text")
    if verdict == Verdict.INCORRECT and not corrected.strip():
        raise ValidationError({"corrected_answer": "say what the correct answer is"})
    if verdict == Verdict.INCOMPLETE and not missing.strip():
        raise ValidationError({"missing_fact": "say which fact is missing"})
    issues = answer.get("kb_issues") or []
    cited = set(item.response.kb_references.values_list("article_id", flat=True))
    clean_issues = []
    for i, issue in enumerate(issues if isinstance(issues, list) else [None]):
        if not isinstance(issue, dict) or issue.get("problem") not in KB_PROBLEMS:
            raise ValidationError(
                {
                    f"kb_issues[{i}]": f"expected {{article_id, problem}} with problem one of {', '.join(KB_PROBLEMS)}"
                }
            )
        article = str(issue.get("article_id") or "").strip()
        if issue["problem"] != "missing" and article not in cited:
            raise ValidationError(
                {
                    f"kb_issues[{i}].article_id": "name an article the answer cited (or problem 'missing')"
                }
            )
        clean_issues.append({"article_id": article, "problem": issue["problem"]})
    return CleanAnswer(
        scores=[],
        verdict=verdict,
        corrected_answer=corrected.strip(),
        missing_fact=missing.strip(),
        kb_issues=tuple(clean_issues),
        rationale=rationale,
    )


def side_shown(preference: float, left_is_a: bool | None) -> SideChoice | None:
    """The answer on the side the rater saw, for a preference in true A/B terms (None when
    the side shown is not known: a judgment imported without it)."""
    if left_is_a is None:
        return None
    return SIDE_BY_SHOWN[int(preference) * (1 if left_is_a else -1)]


def _preferred(preference: float) -> str:
    """Which response a preference in A/B terms favours."""
    return "A" if preference < 0 else "B"


def _pairwise_text(preference: float, left_is_a: bool | None) -> str:
    side = side_shown(preference, left_is_a)
    if side is None:  # side unknown: say it in A/B terms, never guess a side
        return Preference(int(preference)).label
    if side.shown == 0:
        return side.label
    return f"{side.label} (response {_preferred(preference)})"


def _score_as_given(criterion: Criterion, value, choices: list, text: str) -> Any:
    if criterion.scale == Scale.LIKERT:
        return int(value)
    if criterion.scale == Scale.BINARY:
        return "yes" if value else "no"
    if criterion.scale == Scale.SINGLE_CHOICE:
        return choices[0] if choices else criterion.options[int(value)]
    if criterion.scale == Scale.MULTI_CHOICE:
        return list(choices)
    return text


def _score_text(criterion: Criterion, given) -> str:
    if criterion.scale == Scale.LIKERT:
        anchor = ""
        if criterion.anchors and len(criterion.anchors) == criterion.points:
            anchor = f" ({criterion.anchors[given - 1]})"
        return f"{given} of {criterion.points}{anchor}"
    if criterion.scale == Scale.BINARY:
        return "Yes" if given == "yes" else "No"
    if criterion.scale == Scale.MULTI_CHOICE:
        return ", ".join(given) or "none"
    return str(given)


def answer_as_given(judgment) -> dict:
    """The judgment as the rater gave it, in the shape a submit takes: sides as shown,
    option names, "yes"/"no", whole-number scores. Reads ``judgment.scores`` (prefetch
    them with their criteria). Pairwise answers with an unknown side stay in A/B terms
    under ``preference``."""
    kind = judgment.item.kind
    given: dict[str, Any] = {}
    scores: dict[str, Any] = {}
    if kind == TaskKind.PAIRWISE:
        if judgment.preference is not None:
            side = side_shown(judgment.preference, judgment.left_is_a)
            if side is None:
                given["preference"] = Preference(judgment.preference).name.lower()
            else:
                given["choice"] = side.value
            given["both_bad"] = judgment.both_bad
        for s in judgment.scores.all():
            if s.value is not None:
                side = side_shown(s.value, judgment.left_is_a)
                scores[s.criterion.key] = (
                    side.value if side else Preference(int(s.value)).name.lower()
                )
    elif kind == TaskKind.KB_VERIFY:
        given["verdict"] = judgment.verdict
        if judgment.corrected_answer:
            given["corrected_answer"] = judgment.corrected_answer
        if judgment.missing_fact:
            given["missing_fact"] = judgment.missing_fact
        if judgment.kb_issues:
            given["kb_issues"] = list(judgment.kb_issues)
    else:
        for s in judgment.scores.all():
            scores[s.criterion.key] = _score_as_given(s.criterion, s.value, s.choices, s.text)
    if scores:
        given["scores"] = scores
    if judgment.rationale:
        given["rationale"] = judgment.rationale
    return given


def answer_text(judgment) -> str:
    """One line saying the answer as the rater gave it ("Right much better (response A)",
    "Helpfulness: 4 of 5 (Good); Safe and appropriate: Yes")."""
    kind = judgment.item.kind
    if kind == TaskKind.KB_VERIFY:
        if not judgment.verdict:
            return ""
        text = Verdict(judgment.verdict).label
        if judgment.corrected_answer:
            text += f"; correct answer: {judgment.corrected_answer}"
        if judgment.missing_fact:
            text += f"; missing: {judgment.missing_fact}"
        issues = ", ".join(f"{i['article_id']} {i['problem']}" for i in judgment.kb_issues)
        return text + (f"; articles: {issues}" if issues else "")
    parts = []
    if kind == TaskKind.PAIRWISE:
        if judgment.preference is not None:
            text = _pairwise_text(judgment.preference, judgment.left_is_a)
            parts.append(text + (", both bad" if judgment.both_bad else ""))
        for s in judgment.scores.all():
            if s.value is not None:
                parts.append(f"{s.criterion.label}: {_pairwise_text(s.value, judgment.left_is_a)}")
        return "; ".join(parts)
    for s in judgment.scores.all():
        given = _score_as_given(s.criterion, s.value, s.choices, s.text)
        parts.append(f"{s.criterion.label}: {_score_text(s.criterion, given)}")
    return "; ".join(parts)
