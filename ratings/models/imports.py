"""A judgment import run by a worker: the uploaded file and what became of it.

The transcript import's ``ImportJob`` pattern (conversations.models) in this app, because the
import it runs lives here (``ratings.services.judgment_import``); conversations may not depend
on ratings. Its life (queued, running, succeeded or failed, heartbeat) is
conversations/jobs.py's.
"""

from django.db import models

from conversations.models import FileImportJob


class JudgmentImportJob(FileImportJob):
    """One uploaded file of judgments made elsewhere (docs/formats.md) and its outcome."""

    task_name = "ratings.tasks.judgment_import_job"

    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="judgment_import_jobs"
    )
    file = models.FileField(upload_to="judgment-imports/%Y/%m/")
    rejects_file = models.FileField(upload_to="judgment-imports/rejects/%Y/%m/", blank=True)
    # the judgments count for agreement, rater quality, gold accuracy and drift (issue 14)
    count_for_quality = models.BooleanField(default=False)
    conflicts = models.PositiveIntegerField(default=0)
    superseded = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    raters_created = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"judgment import {self.pk} of {self.original_name} ({self.state})"
