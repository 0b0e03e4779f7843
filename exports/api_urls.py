from django.urls import path

from exports import api

app_name = "exports-api"

urlpatterns = [
    path("projects/<slug:slug>/exports/", api.ExportListCreateApi.as_view(), name="list-create"),
    path("exports/<int:pk>/", api.ExportDetailApi.as_view(), name="detail"),
    path("exports/<int:pk>/files/<str:name>", api.ExportFileApi.as_view(), name="file"),
]
