"""Rubrics, work items, assignments and judgments.

The overlap invariant lives in the database: an item's ``n_active`` counts its live leases
plus its submitted assignments and a CHECK keeps it at or below the item's ``overlap``; a
rater holds at most one assignment per item (UNIQUE), so an item can never collect more than
``overlap`` judgments from distinct raters. Judgments are never deleted: an edit writes a new
version and the old one stays readable.
"""

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, When


class TaskKind(models.TextChoices):
    SCORE = "score", "Rubric scoring"
    PAIRWISE = "pairwise", "Pairwise preference"
    KB_VERIFY = "kb_verify", "KB verification"


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


class ItemQuerySet(models.QuerySet["Item"]):
    def open(self) -> "ItemQuerySet":
        return self.filter(queue_rank__isnull=False)

    def complete(self) -> "ItemQuerySet":
        return self.filter(n_done__gte=F("overlap"))


class Item(models.Model):
    """One unit of work: a response to score, a pair to compare, or an answer to verify.

    ``response`` is the scored or verified response, or response A of a pair (the one with
    the lower id); ``response_b`` is response B. Which one a rater sees on the left is decided
    per assignment.
    """

    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="items"
    )
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.PROTECT, related_name="items"
    )
    response = models.ForeignKey(
        "conversations.Message", on_delete=models.PROTECT, related_name="items_as_a"
    )
    response_b = models.ForeignKey(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="items_as_b",
    )
    author_id_cache = models.BigIntegerField(
        null=True, blank=True, help_text="The conversation's author, copied for the queue query."
    )
    overlap = models.PositiveSmallIntegerField()
    n_active = models.PositiveSmallIntegerField(
        default=0, help_text="Live leases plus submitted assignments."
    )
    n_done = models.PositiveSmallIntegerField(default=0, help_text="Submitted assignments.")
    priority = models.SmallIntegerField(default=0)
    is_gold = models.BooleanField(default=False)
    gold_answer = models.JSONField(null=True, blank=True)
    is_retired = models.BooleanField(default=False)
    queue_rank = models.GeneratedField(
        expression=Case(
            When(Q(is_retired=True) | Q(n_active__gte=F("overlap")), then=None),
            When(n_active__gt=0, then=0),
            default=1,
        ),
        output_field=models.SmallIntegerField(null=True),
        db_persist=True,
        help_text="0: started and open, 1: fresh and open, null: full or retired.",
    )
    origin = models.CharField(max_length=32, default="rule", help_text="rule, filter or list.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(n_active__lte=F("overlap")), name="item_never_over_overlap"
            ),
            models.CheckConstraint(
                condition=Q(n_done__lte=F("n_active")), name="item_done_le_active"
            ),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="item_overlap_at_least_1"),
            models.CheckConstraint(
                condition=(
                    Q(kind="pairwise")
                    & Q(response_b__isnull=False)
                    & Q(response__lt=F("response_b"))
                )
                | (~Q(kind="pairwise") & Q(response_b__isnull=True)),
                name="item_pair_shape",
            ),
            models.UniqueConstraint(
                fields=["project", "kind", "response"],
                condition=Q(response_b__isnull=True),
                name="item_single_unique",
            ),
            models.UniqueConstraint(
                fields=["project", "kind", "response", "response_b"],
                condition=Q(response_b__isnull=False),
                name="item_pair_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["project", "kind", "is_gold", "queue_rank", "-priority", "id"],
                condition=Q(queue_rank__isnull=False),
                name="item_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} item {self.pk}"


class AssignmentState(models.TextChoices):
    LEASED = "leased"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    EXPIRED = "expired"


class AssignmentQuerySet(models.QuerySet["Assignment"]):
    def live(self) -> "AssignmentQuerySet":
        return self.filter(state=AssignmentState.LEASED)

    def for_rater(self, rater) -> "AssignmentQuerySet":
        return self.filter(rater=rater)


class Assignment(models.Model):
    """A rater's hold on an item. One per (item, rater), ever: nobody gets an item twice."""

    # no separate indexes on item and rater: the unique (item, rater) one and the
    # (rater, project, state) one start with them, and every claim and submit writes each index
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="assignments"
    )
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="assignments",
        db_index=False,
    )
    state = models.CharField(
        max_length=16, choices=AssignmentState.choices, default=AssignmentState.LEASED
    )
    left_is_a = models.BooleanField(
        default=True, help_text="Pairwise: response A was shown on the left."
    )
    leased_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "rater"], name="one_assignment_per_rater"),
        ]
        indexes = [
            models.Index(
                fields=["project", "lease_expires_at"],
                condition=Q(state="leased"),
                name="assignment_live_leases",
            ),
            # A rater's live lease, looked up by every ``next``. The index above would serve
            # too, but it holds every lease of the project, and until VACUUM also the entries
            # of leases submitted since: a claim read them all (about 1 ms after 7,500
            # ratings), this one reads the rater's own.
            models.Index(
                fields=["rater", "project"],
                condition=Q(state="leased"),
                name="assignment_rater_live",
            ),
            models.Index(fields=["rater", "project", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.rater} on {self.item} ({self.state})"


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
        indexes = [
            models.Index(fields=["rater", "created_at"]),
            models.Index(
                fields=["item"], condition=Q(is_current=True), name="judgment_current_item"
            ),
        ]

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


class RaterProfile(models.Model):
    """Per-user facts the ratings app needs: external raters, pseudonyms for exports."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_profile"
    )
    is_external = models.BooleanField(default=False)
    external_source = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


class FlagState(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class DriftFlag(models.Model):
    """A rater whose quality or habits changed, with the evidence. Written by quality runs."""

    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="drift_flags"
    )
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drift_flags"
    )
    detector = models.CharField(max_length=32)
    window_kind = models.CharField(max_length=8)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    evidence = models.JSONField(default=dict)
    run = models.ForeignKey(
        "QualityRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="flags"
    )
    state = models.CharField(max_length=16, choices=FlagState.choices, default=FlagState.OPEN)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "rater", "detector", "window_kind", "window_start"],
                name="drift_flag_unique_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.detector} flag on {self.rater} ({self.state})"


class RunState(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped", "Skipped (nothing changed)"


class QualityRun(models.Model):
    """One computation of a project's agreement, per-rater quality and drift: the history."""

    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="quality_runs"
    )
    trigger = models.CharField(max_length=16, default="schedule")
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    n_judgments = models.PositiveIntegerField(default=0)
    data_version = models.CharField(
        max_length=64, blank=True, help_text="Digest of the judgments seen; same digest, no rerun."
    )
    error = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True)
    contested = models.JSONField(
        default=list, blank=True, help_text="Items with the lowest agreement: id, kind, score."
    )
    confusion = models.JSONField(
        default=dict, blank=True, help_text="Coincidence matrices per kind and criterion."
    )

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["project", "-started_at"])]

    def __str__(self) -> str:
        return f"quality run {self.pk} of {self.project} ({self.state})"


class AgreementSnapshot(models.Model):
    """One agreement figure of one run: per task kind, criterion (or the overall answer) and
    metric, with its bootstrap interval, or no value and the reason."""

    run = models.ForeignKey(QualityRun, on_delete=models.CASCADE, related_name="agreements")
    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="agreements"
    )
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    criterion = models.CharField(max_length=64, blank=True, help_text="Empty: the overall answer.")
    metric = models.CharField(max_length=32)
    value = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    n_units = models.PositiveIntegerField(default=0)
    n_pairable_units = models.PositiveIntegerField(default=0)
    n_values = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=255, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "kind", "criterion", "metric"], name="agreement_unique_per_run"
            ),
        ]
        indexes = [models.Index(fields=["project", "kind", "criterion", "metric", "computed_at"])]

    def __str__(self) -> str:
        return f"{self.kind}/{self.criterion or '-'} {self.metric}={self.value}"


class RaterQuality(models.Model):
    """Per-rater quality figures of one run (the dashboard's rater table)."""

    run = models.ForeignKey(QualityRun, on_delete=models.CASCADE, related_name="rater_rows")
    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="rater_quality"
    )
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quality_rows"
    )
    n_judgments = models.PositiveIntegerField(default=0)
    agreement = models.FloatField(
        null=True, blank=True, help_text="With the leave-one-out consensus."
    )
    gold_accuracy = models.FloatField(null=True, blank=True)
    gold_n = models.PositiveIntegerField(default=0)
    mean_kappa = models.FloatField(null=True, blank=True)
    median_seconds = models.FloatField(null=True, blank=True)
    mean_seconds = models.FloatField(null=True, blank=True)
    left_share = models.FloatField(null=True, blank=True)
    left_p_value = models.FloatField(null=True, blank=True)
    straight_lining = models.FloatField(null=True, blank=True)
    divergence_js = models.FloatField(null=True, blank=True)
    divergence_p_value = models.FloatField(null=True, blank=True)
    open_flags = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "rater"], name="rater_quality_unique_per_run"),
        ]

    def __str__(self) -> str:
        return f"{self.rater_id} in run {self.run_id}"
