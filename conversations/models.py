"""Projects, their members, and the transcripts they rate.

A conversation is an ordered list of messages. Each position holds one message on the main
line (``candidate = 0``); an assistant position may hold further candidate responses to the
same context (``candidate = 1, 2, ...``): that is what pairwise comparison needs. The context
of a message is the main line before its position. A response may carry the knowledge-base
passages it relied on (``KBReference``), which is what SME verification needs.

Every row keeps where it came from (source format, file name and line, external id) so it can
be traced back to its origin.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    LEAD = "lead", "Project lead"
    EVALUATOR = "evaluator", "Evaluator"
    SME = "sme", "Subject-matter expert"
    CONSUMER = "consumer", "Data consumer"


class ProjectQuerySet(models.QuerySet["Project"]):
    def visible_to(self, user) -> "ProjectQuerySet":
        """Projects the user is a member of (staff see all)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(memberships__user=user).distinct()

    def with_viewer_role(self, user) -> "ProjectQuerySet":
        """``visible_to(user)`` in one query, each project carrying the user's role in
        ``viewer_role`` (and the user's id in ``viewer_id``), so that ``role_of`` later in the
        same request needs no query of its own. No DISTINCT: a user has at most one membership
        per project."""
        if not user.is_authenticated:
            return self.none()
        viewer = models.Value(user.pk, output_field=models.BigIntegerField())
        if user.is_superuser:
            return self.annotate(viewer_id=viewer, viewer_role=models.Value(Role.LEAD))
        return self.filter(memberships__user=user).annotate(
            viewer_id=viewer, viewer_role=models.F("memberships__role")
        )

    def with_role(self, user, *roles: str) -> "ProjectQuerySet":
        if user.is_superuser:
            return self.all()
        return self.filter(memberships__user=user, memberships__role__in=roles).distinct()


class Project(models.Model):
    """An evaluation campaign: guidelines, task types, overlap, gold rate, members."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown annotation guide.")
    guidelines_version = models.PositiveIntegerField(default=1)
    overlap = models.PositiveSmallIntegerField(
        default=3, help_text="Distinct raters each item needs."
    )
    gold_rate = models.FloatField(default=0.05, help_text="Share of gold items in a queue.")
    lease_seconds = models.PositiveIntegerField(default=1800)
    has_scoring = models.BooleanField(default=True)
    has_pairwise = models.BooleanField(default=True)
    has_kb_verification = models.BooleanField(default=False)
    allow_edits = models.BooleanField(
        default=True, help_text="Raters may revise a submitted judgment (a new version)."
    )
    pause_flagged_raters = models.BooleanField(default=False)
    show_rater_identities = models.BooleanField(
        default=False, help_text="Data consumers see real rater names instead of pseudonyms."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_at_least_1"),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_0_1"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class SourceFormat(models.TextChoices):
    NATIVE = "native", "Native JSONL"
    OPENAI = "openai", "OpenAI chat messages"
    SHAREGPT = "sharegpt", "ShareGPT"
    HH_RLHF = "hh-rlhf", "Anthropic HH-RLHF pairs"
    OASST = "oasst", "OpenAssistant message trees"
    CSV = "csv", "CSV rows"


class Conversation(models.Model):
    # no separate index on project: the unique (project, external_id) index starts with it
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="conversations", db_index=False
    )
    external_id = models.CharField(
        max_length=255, help_text="The source's id, or 'sha256:<hash>' where it has none."
    )
    content_hash = models.CharField(max_length=64)
    source_format = models.CharField(max_length=16, choices=SourceFormat.choices)
    source_name = models.CharField(max_length=255, blank=True)
    source_line = models.PositiveIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="authored_conversations",
        help_text="A member who wrote this conversation never rates it.",
    )
    import_job = models.ForeignKey(
        "ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # import jobs are never deleted; every index slows bulk imports
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="conversation_external_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class MessageRole(models.TextChoices):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class MessageQuerySet(models.QuerySet["Message"]):
    def main_line(self) -> "MessageQuerySet":
        return self.filter(candidate=0)

    def responses(self) -> "MessageQuerySet":
        return self.filter(role=MessageRole.ASSISTANT)

    def context_of(self, message: "Message") -> "MessageQuerySet":
        """The main-line messages before ``message``, in order."""
        return self.filter(
            conversation_id=message.conversation_id, candidate=0, position__lt=message.position
        ).order_by("position")


class Message(models.Model):
    # no separate index on conversation: the unique (conversation, position, candidate) one
    # starts with it
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    position = models.PositiveIntegerField()
    candidate = models.PositiveSmallIntegerField(default=0)
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    content = models.TextField()
    name = models.CharField(max_length=255, blank=True)
    model = models.CharField(max_length=255, blank=True, help_text="Hidden from raters.")
    external_id = models.CharField(max_length=255, blank=True)
    source_rank = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The source's own ranking among candidates (0 = best), kept for re-export "
        "and for importing it as an external judgment.",
    )
    metadata = models.JSONField(default=dict, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["conversation_id", "position", "candidate"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "position", "candidate"], name="message_slot_unique"
            ),
            models.CheckConstraint(
                condition=Q(role__in=MessageRole.values), name="message_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(candidate=0) | Q(role=MessageRole.ASSISTANT),
                name="only_assistant_messages_have_candidates",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.position}.{self.candidate} {self.role}"


class KBReference(models.Model):
    """A knowledge-base passage that a response relied on."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="kb_references")
    position = models.PositiveSmallIntegerField(default=0)
    article_id = models.CharField(max_length=255)
    title = models.CharField(max_length=500, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    version = models.CharField(max_length=100, blank=True)
    snippet = models.TextField(blank=True)

    class Meta:
        ordering = ["message_id", "position"]
        indexes = [models.Index(fields=["article_id"])]

    def __str__(self) -> str:
        return f"{self.article_id} ({self.title})"


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BackgroundJob(models.Model):
    """What every job row run by a Celery worker shares (conversations/jobs.py runs them):
    ``state`` with the ``JobState`` values, ``started_at``, ``finished_at``, a text field for
    the reason of a failure (``error_field``), and the heartbeat a running job renews."""

    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last sign of life of the worker running the job; renewed while it runs.",
    )
    error_field = "error"
    # the Celery task that runs a queued job of this kind (the sweep sends it again when a
    # job waits too long: a message the broker lost); None: the job is never queued
    task_name: str | None = None

    class Meta:
        abstract = True

    def work_dir(self):
        """The folder of files the job writes, removed when it fails (None: no such folder)."""
        return None


class FileImportJob(BackgroundJob):
    """An uploaded file a worker imports record by record: transcripts (``ImportJob``) or
    judgments made elsewhere (``ratings.JudgmentImportJob``). Each kind adds its project,
    its file fields (their folders differ) and its own counts."""

    error_field = "failure"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    original_name = models.CharField(max_length=255)
    skip_invalid = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    bytes_total = models.BigIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0)
    records_read = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def progress(self) -> float:
        if self.state == JobState.SUCCEEDED:
            return 1.0
        return min(1.0, self.bytes_read / self.bytes_total) if self.bytes_total else 0.0


class ImportJob(FileImportJob):
    """One uploaded transcript file and what became of it."""

    task_name = "conversations.tasks.transcript_import_job"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    file = models.FileField(upload_to="imports/%Y/%m/")
    format = models.CharField(max_length=16, choices=SourceFormat.choices, blank=True)
    rejects_file = models.FileField(upload_to="imports/rejects/%Y/%m/", blank=True)

    def __str__(self) -> str:
        return f"import {self.pk} of {self.original_name} ({self.state})"
