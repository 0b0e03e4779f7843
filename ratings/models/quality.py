"""Quality: rater profiles, drift flags, quality runs and what each run computed."""

from django.conf import settings
from django.db import models

from conversations.models import BackgroundJob
from ratings.models.rubrics import TaskKind


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


class FlagMethod(models.TextChoices):
    # one Benjamini-Hochberg family per run over re-tested windows (before issue 14): no
    # guarantee across runs, so such a flag never pauses a queue
    BATCH = "", "Batch (no guarantee across runs)"
    # each complete window tested once at a fixed level (ratings.drift.online)
    ONLINE = "online", "Complete windows, each tested once"


class DriftFlagQuerySet(models.QuerySet["DriftFlag"]):
    def pausing(self) -> "DriftFlagQuerySet":
        """The flags that pause a rater's queue when the project says so: open, raised by the
        method whose false-alarm guarantee holds across runs, and still supported by the
        latest data."""
        return self.filter(state=FlagState.OPEN, method=FlagMethod.ONLINE, is_supported=True)


class DriftFlag(models.Model):
    """A rater whose quality or habits changed, with the evidence. Written by quality runs.

    ``window_start`` is when the flagged window began (the change happened at or before it,
    at most one window earlier); ``evidence`` holds the test (``p_value`` against ``alpha``),
    the compared values and ``summary``, one sentence for a lead. ``is_supported`` says
    whether the latest data still shows the change (``support`` holds that re-check); a flag
    that lost its support is kept, marked, with ``unsupported_since``."""

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
    method = models.CharField(
        max_length=16, choices=FlagMethod.choices, default=FlagMethod.BATCH, blank=True
    )
    is_supported = models.BooleanField(
        default=True, help_text="Whether the latest data still shows the change."
    )
    support = models.JSONField(default=dict, blank=True, help_text="The latest re-check.")
    support_checked_at = models.DateTimeField(null=True, blank=True)
    unsupported_since = models.DateTimeField(null=True, blank=True)

    objects = DriftFlagQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "rater", "detector", "window_kind", "window_start"],
                name="drift_flag_unique_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.detector} flag on {self.rater} ({self.state})"


class DriftCursor(models.Model):
    """How many complete windows of a rater's stream a detector has tested in a project:
    each window is tested once, by the first quality run that sees it complete."""

    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="drift_cursors"
    )
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drift_cursors"
    )
    detector = models.CharField(max_length=32)
    windows_tested = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "rater", "detector"], name="drift_cursor_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.detector} of {self.rater_id}: {self.windows_tested} windows"


class RunState(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped", "Skipped (nothing changed)"


class QualityRun(BackgroundJob):
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
