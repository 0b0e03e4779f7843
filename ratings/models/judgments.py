"""Judgments and their rubric scores. Never deleted: an edit writes a new version and the
old one stays readable."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from ratings.models.rubrics import Criterion, Rubric
from ratings.models.work import Assignment, Item


class Preference(models.IntegerChoices):
    """Preference on the true A/B responses (never on the side shown)."""

    A_MUCH_BETTER = -2, "A much better"
    A_BETTER = -1, "A better"
    TIE = 0, "Tie"
    B_BETTER = 1, "B better"
    B_MUCH_BETTER = 2, "B much better"


class Verdict(models.TextChoices):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    INCOMPLETE = "incomplete"
    CANNOT_JUDGE = "cannot_judge", "Cannot judge"


class JudgmentQuerySet(models.QuerySet["Judgment"]):
    def current(self) -> "JudgmentQuerySet":
        return self.filter(is_current=True)

    def for_project(self, project) -> "JudgmentQuerySet":
        return self.filter(item__project=project)


class Judgment(models.Model):
    """One rater's answer to one item, in one version. Never deleted."""

    # no separate indexes on item and rater: the unique (item, rater, version) one and the
    # (rater, created_at) one start with them, and every submit writes each index
    item = models.ForeignKey(
        Item, on_delete=models.PROTECT, related_name="judgments", db_index=False
    )
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.PROTECT, related_name="judgments"
    )
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="judgments",
        db_index=False,
    )
    version = models.PositiveSmallIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    rubric = models.ForeignKey(Rubric, null=True, blank=True, on_delete=models.PROTECT)
    guidelines_version = models.PositiveIntegerField(default=1)
    preference = models.SmallIntegerField(null=True, blank=True, choices=Preference.choices)
    both_bad = models.BooleanField(default=False)
    left_is_a = models.BooleanField(null=True, blank=True, help_text="Side shown, if known.")
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    corrected_answer = models.TextField(blank=True)
    missing_fact = models.TextField(blank=True)
    kb_issues = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"article_id": ..., "problem": "wrong" | "outdated" | "missing"}]',
    )
    rationale = models.TextField(blank=True)
    time_on_task_ms = models.PositiveIntegerField(null=True, blank=True)
    is_external = models.BooleanField(default=False)
    # an imported judgment that counts for agreement, rater quality, gold accuracy and drift
    # like one made here (the team's own history, imported with --count-for-quality)
    # (a database default too, so that raw COPY and INSERT writers need not name it)
    counts_for_quality = models.BooleanField(default=False, db_default=False)
    source = models.CharField(max_length=64, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()

    objects = JudgmentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "rater", "version"], name="judgment_version_unique"
            ),
            models.UniqueConstraint(
                fields=["item", "rater"], condition=Q(is_current=True), name="one_current_judgment"
            ),
            models.CheckConstraint(
                condition=Q(preference__isnull=True) | Q(preference__gte=-2, preference__lte=2),
                name="preference_in_range",
            ),
        ]
        # an item's current judgments are found by the one_current_judgment index (it starts
        # with the item and has the same condition): a second index would only be written
        indexes = [models.Index(fields=["rater", "created_at"])]

    def __str__(self) -> str:
        return f"judgment {self.pk} v{self.version} by {self.rater_id} on item {self.item_id}"


class Score(models.Model):
    """One criterion's answer inside a judgment (a score, or a per-criterion preference)."""

    # no separate index on judgment: the unique (judgment, criterion) one starts with it
    judgment = models.ForeignKey(
        Judgment, on_delete=models.PROTECT, related_name="scores", db_index=False
    )
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="scores")
    value = models.FloatField(null=True, blank=True)
    choices = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["judgment", "criterion"], name="one_score_per_criterion"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.criterion_id}={self.value}"
