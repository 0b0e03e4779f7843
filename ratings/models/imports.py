"""A judgment import run by a worker: the uploaded file and what became of it.

The transcript import's ``ImportJob`` pattern (conversations.models) in this app, because the
import it runs lives here (``ratings.services.judgment_import``); conversations may not depend
on ratings. Its life (queued, running, succeeded or failed, heartbeat) is
conversations/jobs.py's.
"""

from django.conf import settings
from django.db import models

from conversations.models import BackgroundJob, JobState


class JudgmentImportJob(BackgroundJob):
    """One uploaded file of judgments made elsewhere (docs/formats.md) and its outcome."""

    error_field = "failure"
    task_name = "ratings.tasks.judgment_import_job"

    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="judgment_import_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="judgment-imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    skip_invalid = models.BooleanField(default=False)
    # the judgments count for agreement, rater quality, gold accuracy and drift (issue 14)
    count_for_quality = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    bytes_total = models.BigIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0)
    records_read = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    superseded = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    raters_created = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    rejects_file = models.FileField(upload_to="judgment-imports/rejects/%Y/%m/", blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"judgment import {self.pk} of {self.original_name} ({self.state})"

    @property
    def progress(self) -> float:
        if self.state == JobState.SUCCEEDED:
            return 1.0
        return min(1.0, self.bytes_read / self.bytes_total) if self.bytes_total else 0.0
