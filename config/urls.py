from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ratings import views as ratings_views

urlpatterns = [
    path("", ratings_views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("conversations.api_urls")),
    path("api/v1/", include("ratings.api_urls")),
    path("api/v1/", include("exports.api_urls")),
    path("api/v1/", include("exports.report_api_urls")),
    path("", include("conversations.urls")),
    path("", include("ratings.urls")),
    path("", include("exports.urls")),
    path("", include("exports.report_urls")),
]
