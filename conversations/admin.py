from django.contrib import admin

from conversations.models import Conversation, ImportJob, KBReference, Membership, Message, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "overlap", "gold_rate", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["position", "candidate", "role", "content", "model", "source_rank"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        """Messages come from imports only: a message added here could enter the prompt of
        a queued pair, whose text never changes (exports/accel/README.md)."""
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["external_id", "project", "source_format", "source_name", "source_line"]
    list_filter = ["project", "source_format"]
    search_fields = ["external_id"]
    inlines = [MessageInline]
    raw_id_fields = ["author", "import_job"]


@admin.register(KBReference)
class KBReferenceAdmin(admin.ModelAdmin):
    list_display = ["article_id", "title", "version"]
    search_fields = ["article_id", "title"]
    raw_id_fields = ["message"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["original_name", "project", "state", "imported", "duplicates", "rejected"]
    list_filter = ["state", "project"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]
