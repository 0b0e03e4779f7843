from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from conversations.api_auth import TokenCreateApi
from ratings import views as ratings_views

urlpatterns = [
    path("", ratings_views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script from a URL (no inline script); the page's own <style>
    # element is the one inline style the Content-Security-Policy allows, here only.
    path(
        "api/v1/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="api-docs",
    ),
    path("api/v1/auth/token/", TokenCreateApi.as_view(), name="api-token"),
    path("api/v1/", include("conversations.api_urls")),
    path("api/v1/", include("ratings.api_urls")),
    path("api/v1/", include("exports.api_urls")),
    path("api/v1/", include("exports.report_api_urls")),
    path("", include("accounts.urls")),
    path("", include("conversations.urls")),
    path("", include("ratings.urls")),
    path("", include("exports.urls")),
    path("", include("exports.report_urls")),
]
