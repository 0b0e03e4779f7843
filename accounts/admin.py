from django.contrib import admin

from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "key_start", "created_at", "last_used_at")
    search_fields = ("name", "user__username")
    readonly_fields = ("user", "name", "key_start", "key_hash", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False  # a key is shown once, to its owner, on the profile page
