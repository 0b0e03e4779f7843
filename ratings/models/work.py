"""Work items and assignments: what is rated and who holds it.

The overlap invariant lives in the database: an item's ``n_active`` counts its live leases
plus its submitted assignments and a CHECK keeps it at or below the item's ``overlap``; a
rater holds at most one assignment per item (UNIQUE), so an item can never collect more than
``overlap`` judgments from distinct raters. Judgments are never deleted: an edit writes a new
version and the old one stays readable.
"""

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, When

from ratings.models.rubrics import TaskKind


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
