from django.urls import path

from ratings import api, api_quality
from ratings.api_judgment_import import (
    JudgmentImportApi,
    JudgmentImportJobDetailApi,
    JudgmentImportJobRejectsApi,
)

app_name = "ratings-api"

urlpatterns = [
    path("projects/<slug:slug>/", api.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<slug:slug>/rubric/", api.RubricApi.as_view(), name="rubric"),
    path("projects/<slug:slug>/items/", api.ItemListApi.as_view(), name="item-list"),
    path("projects/<slug:slug>/items/queue/", api.ItemQueueApi.as_view(), name="item-queue"),
    path("projects/<slug:slug>/next/", api.NextApi.as_view(), name="next"),
    path("projects/<slug:slug>/progress/", api.ProgressApi.as_view(), name="progress"),
    path(
        "projects/<slug:slug>/judgments/import/",
        JudgmentImportApi.as_view(),
        name="judgment-import",
    ),
    path(
        "judgment-imports/<int:pk>/",
        JudgmentImportJobDetailApi.as_view(),
        name="judgment-import-detail",
    ),
    path(
        "judgment-imports/<int:pk>/rejects/",
        JudgmentImportJobRejectsApi.as_view(),
        name="judgment-import-rejects",
    ),
    path(
        "projects/<slug:slug>/my/judgments/", api.MyJudgmentListApi.as_view(), name="my-judgments"
    ),
    path("projects/<slug:slug>/my/stats/", api.MyStatsApi.as_view(), name="my-stats"),
    path("assignments/<int:pk>/submit/", api.SubmitApi.as_view(), name="submit"),
    path("assignments/<int:pk>/skip/", api.SkipApi.as_view(), name="skip"),
    path("judgments/<int:pk>/revise/", api.ReviseApi.as_view(), name="revise"),
    path("items/<int:pk>/gold/", api.ItemGoldApi.as_view(), name="item-gold"),
]

urlpatterns += [
    path(
        "projects/<slug:slug>/quality/agreement/",
        api_quality.AgreementApi.as_view(),
        name="quality-agreement",
    ),
    path(
        "projects/<slug:slug>/quality/raters/",
        api_quality.RaterTableApi.as_view(),
        name="quality-raters",
    ),
    path(
        "projects/<slug:slug>/quality/raters/<int:rater_id>/trend/",
        api_quality.RaterTrendApi.as_view(),
        name="quality-rater-trend",
    ),
    path(
        "projects/<slug:slug>/quality/confusion/",
        api_quality.ConfusionApi.as_view(),
        name="quality-confusion",
    ),
    path(
        "projects/<slug:slug>/quality/contested/",
        api_quality.ContestedApi.as_view(),
        name="quality-contested",
    ),
    path(
        "projects/<slug:slug>/quality/run/", api_quality.QualityRunApi.as_view(), name="quality-run"
    ),
    path("flags/<int:pk>/", api_quality.FlagUpdateApi.as_view(), name="flag-update"),
]
