from django.contrib import admin

from exports.models import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "format", "file_type", "state", "rows_written", "created_at"]
    list_filter = ["state", "format", "project"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]
