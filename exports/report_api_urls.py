"""API of the reports (KB correctness, model leaderboard): JSON and CSV."""

from django.urls import path

from exports import report_api

app_name = "reports-api"

urlpatterns = [
    path("projects/<slug:slug>/reports/kb/", report_api.KBReportApi.as_view(), name="kb"),
    path(
        "projects/<slug:slug>/reports/kb/answers/",
        report_api.KBAnswersApi.as_view(),
        name="kb-answers",
    ),
    path(
        "projects/<slug:slug>/reports/kb/sources/",
        report_api.KBSourcesApi.as_view(),
        name="kb-sources",
    ),
    path(
        "projects/<slug:slug>/reports/kb/weekly/",
        report_api.KBWeeklyApi.as_view(),
        name="kb-weekly",
    ),
    path(
        "projects/<slug:slug>/reports/leaderboard/",
        report_api.LeaderboardApi.as_view(),
        name="leaderboard",
    ),
]
