from django.urls import path

from conversations import api

app_name = "api"

urlpatterns = [
    path("projects/", api.ProjectListApi.as_view(), name="project-list"),
    path("projects/<slug:slug>/imports/", api.ImportJobCreateApi.as_view(), name="import-create"),
    path("imports/<int:pk>/", api.ImportJobDetailApi.as_view(), name="import-detail"),
    path("imports/<int:pk>/rejects/", api.ImportJobRejectsApi.as_view(), name="import-rejects"),
]
