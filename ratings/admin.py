from django.contrib import admin

from ratings.models import (
    Assignment,
    Criterion,
    DriftFlag,
    Item,
    Judgment,
    JudgmentImportJob,
    Rubric,
    Score,
)


class CriterionInline(admin.StackedInline):
    model = Criterion
    extra = 0


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ["project", "version", "is_current", "created_at"]
    list_filter = ["project", "is_current"]
    inlines = [CriterionInline]

    def has_delete_permission(self, request, obj=None):
        return obj is None or not Judgment.objects.filter(rubric=obj).exists()


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "kind",
        "n_active",
        "n_done",
        "overlap",
        "priority",
        "is_gold",
        "is_retired",
    ]
    list_filter = ["project", "kind", "is_gold", "is_retired"]
    raw_id_fields = ["conversation", "response", "response_b"]
    readonly_fields = ["n_active", "n_done", "queue_rank"]

    def get_readonly_fields(self, request, obj=None):
        """Once an item exists its text is fixed: the conversation and the responses it
        shows are read-only. Exports rely on it (a pair's text never changes after
        queueing; the export cache keys a pair's encoded text by the item's id and creation
        time, exports/accel/README.md), and so do the votes already cast on it."""
        text = ["conversation", "response", "response_b"] if obj is not None else []
        return [*self.readonly_fields, *text]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "rater", "state", "left_is_a", "leased_at", "submitted_at"]
    list_filter = ["state", "project"]
    raw_id_fields = ["item", "rater"]


class ScoreInline(admin.TabularInline):
    model = Score
    extra = 0
    can_delete = False
    readonly_fields = ["criterion", "value", "choices", "text"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    """Read-only: judgments are never edited or deleted behind their raters' backs."""

    list_display = [
        "id",
        "item",
        "rater",
        "version",
        "is_current",
        "preference",
        "verdict",
        "created_at",
    ]
    list_filter = ["is_current", "is_external", "item__kind"]
    inlines = [ScoreInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(DriftFlag)
class DriftFlagAdmin(admin.ModelAdmin):
    list_display = ["project", "rater", "detector", "window_start", "state"]
    list_filter = ["project", "detector", "state"]


@admin.register(JudgmentImportJob)
class JudgmentImportJobAdmin(admin.ModelAdmin):
    list_display = ["original_name", "project", "state", "imported", "duplicates", "rejected"]
    list_filter = ["state", "project"]
    readonly_fields = [f.name for f in JudgmentImportJob._meta.fields]
