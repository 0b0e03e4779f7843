from django.contrib.auth import views as auth_views
from django.urls import path

from conversations import views, views_history

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/<slug:slug>/import/", views.import_upload, name="import-upload"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("projects/<slug:slug>/imports/", views_history.import_history, name="import-history"),
]
