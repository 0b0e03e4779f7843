from django.urls import path

from ratings import views

app_name = "ratings"

urlpatterns = [
    path("projects/new/", views.project_new, name="project-new"),
    path("projects/<slug:slug>/", views.project_page, name="project"),
    path("projects/<slug:slug>/rubric/", views.rubric_edit, name="rubric"),
    path("projects/<slug:slug>/rubric.yaml", views.rubric_download, name="rubric-yaml"),
    path("projects/<slug:slug>/members/", views.members, name="members"),
    path("projects/<slug:slug>/rate/<str:kind>/", views.rate, name="rate"),
    path("projects/<slug:slug>/settings/", views.project_settings, name="settings"),
    path("projects/<slug:slug>/quality/", views.quality_dashboard, name="quality"),
    path(
        "projects/<slug:slug>/quality/raters/<int:rater_id>/",
        views.quality_rater,
        name="quality-rater",
    ),
    path("items/<int:pk>/", views.item_detail, name="item"),
    path("projects/<slug:slug>/guidelines/", views.guidelines, name="guidelines"),
    path("projects/<slug:slug>/mine/", views.my_judgments, name="my-judgments"),
    path("assignments/<int:pk>/submit/", views.submit, name="submit"),
    path("assignments/<int:pk>/skip/", views.skip, name="skip"),
    path("judgments/<int:pk>/edit/", views.edit_judgment, name="edit-judgment"),
    path(
        "projects/<slug:slug>/judgments/import/",
        views.judgment_import_upload,
        name="judgment-import",
    ),
    path("judgment-imports/<int:pk>/", views.judgment_import_detail, name="judgment-import-detail"),
]
