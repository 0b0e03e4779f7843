from django.urls import path

from ratings import api

app_name = "ratings-api"

urlpatterns = [
    path("projects/<slug:slug>/", api.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<slug:slug>/rubric/", api.RubricApi.as_view(), name="rubric"),
    path("projects/<slug:slug>/items/", api.ItemListApi.as_view(), name="item-list"),
    path("projects/<slug:slug>/items/queue/", api.ItemQueueApi.as_view(), name="item-queue"),
    path("projects/<slug:slug>/next/", api.NextApi.as_view(), name="next"),
    path("projects/<slug:slug>/progress/", api.ProgressApi.as_view(), name="progress"),
    path(
        "projects/<slug:slug>/my/judgments/", api.MyJudgmentListApi.as_view(), name="my-judgments"
    ),
    path("projects/<slug:slug>/my/stats/", api.MyStatsApi.as_view(), name="my-stats"),
    path("assignments/<int:pk>/submit/", api.SubmitApi.as_view(), name="submit"),
    path("assignments/<int:pk>/skip/", api.SkipApi.as_view(), name="skip"),
    path("judgments/<int:pk>/revise/", api.ReviseApi.as_view(), name="revise"),
]
