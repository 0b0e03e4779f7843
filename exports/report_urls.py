"""Web pages of the reports (KB correctness, model leaderboard)."""

from django.urls import path

from exports import report_views

app_name = "reports"

urlpatterns = [
    path("projects/<slug:slug>/reports/kb/", report_views.kb_report_page, name="kb"),
    path(
        "projects/<slug:slug>/reports/leaderboard/",
        report_views.leaderboard_page,
        name="leaderboard",
    ),
]
