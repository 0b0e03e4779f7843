"""Rubrics and their criteria: what raters answer, one version at a time."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class TaskKind(models.TextChoices):
    SCORE = "score", "Rubric scoring"
    PAIRWISE = "pairwise", "Pairwise preference"
    KB_VERIFY = "kb_verify", "KB verification"

    @classmethod
    def run_by(cls, project) -> list[str]:
        """The kinds of work ``project`` runs (its task types), in this order."""
        return [
            kind
            for kind, on in (
                (cls.SCORE, project.has_scoring),
                (cls.PAIRWISE, project.has_pairwise),
                (cls.KB_VERIFY, project.has_kb_verification),
            )
            if on
        ]


class Scale(models.TextChoices):
    LIKERT = "likert", "Likert"
    BINARY = "binary", "Binary (yes / no)"
    SINGLE_CHOICE = "single_choice", "Single choice"
    MULTI_CHOICE = "multi_choice", "Multiple choice"
    FREE_TEXT = "free_text", "Free text"


class Rubric(models.Model):
    """One version of a project's rubric. A new version is made when a rubric that already has
    judgments changes; each judgment records the version it was made under."""

    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="rubrics"
    )
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="rubric_version_unique"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_current=True), name="one_current_rubric"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} rubric v{self.version}"


class Criterion(models.Model):
    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="criteria")
    key = models.SlugField(max_length=64)
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    scale = models.CharField(max_length=16, choices=Scale.choices, default=Scale.LIKERT)
    points = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Likert: number of points (2 to 10)."
    )
    anchors = models.JSONField(
        default=list, blank=True, help_text="Likert: anchor text for each point, lowest first."
    )
    options = models.JSONField(default=list, blank=True, help_text="Choice scales: the options.")
    required = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    applies_to = models.JSONField(
        default=list,
        blank=True,
        help_text="Task kinds this criterion is asked in (empty: scoring only; pairwise asks "
        "it as an optional per-criterion preference).",
    )

    class Meta:
        ordering = ["rubric_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rubric", "key"], name="criterion_key_unique"),
            models.CheckConstraint(
                condition=~Q(scale="likert") | Q(points__gte=2, points__lte=10),
                name="likert_has_2_to_10_points",
            ),
        ]

    def __str__(self) -> str:
        return self.label
