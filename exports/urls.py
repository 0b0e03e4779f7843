from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    path("projects/<slug:slug>/exports/", views.exports_page, name="page"),
    path("exports/<int:pk>/files/<str:name>", views.export_download, name="download"),
]
