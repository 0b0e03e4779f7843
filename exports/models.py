"""Export jobs: one requested dataset or report file, its state, counts, files and manifest."""

from pathlib import Path

from django.conf import settings
from django.db import models

from conversations.models import BackgroundJob, JobState


class ExportFormat(models.TextChoices):
    TRL = "trl", "TRL preference (standard strings)"
    TRL_CONVERSATIONAL = "trl-conversational", "TRL preference (conversational)"
    TRL_IMPLICIT = "trl-implicit", "TRL implicit prompt (reward modelling)"
    HH_RLHF = "hh-rlhf", "Anthropic HH-RLHF text pairs"
    OPENAI_DPO = "openai-dpo", "OpenAI preference fine-tuning"
    KTO = "kto", "KTO / unpaired"
    RUBRIC_SCORES = "rubric-scores", "Rubric scores (per response and criterion)"


class FileType(models.TextChoices):
    JSONL = "jsonl"
    PARQUET = "parquet"
    CSV = "csv"


class ExportJob(BackgroundJob):
    task_name = "exports.tasks.export_job_run"

    project = models.ForeignKey(
        "conversations.Project", on_delete=models.CASCADE, related_name="export_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=32, choices=ExportFormat.choices)
    file_type = models.CharField(max_length=8, choices=FileType.choices, default=FileType.JSONL)
    compress = models.BooleanField(default=False)
    options = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    progress = models.FloatField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=list, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} {self.format} ({self.state})"

    def work_dir(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "exports" / str(self.pk)
