"""Web pages answer 405 to HTTP methods they do not serve.

The web UI's pages serve GET (and HEAD) and, for forms, POST. Without this, a PUT or DELETE on
a function view was answered like a GET, and Django's form views (the login page, the
password pages) treat PUT as POST. API views are left alone: DRF answers each method an API
view does not define with 405 itself. A view that serves fewer methods still says so itself
(``require_POST`` answers a GET with 405).
"""

from django.http import HttpRequest, HttpResponseNotAllowed
from rest_framework.views import APIView

WEB_METHODS = ("GET", "HEAD", "POST")


class WebMethodsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.method in WEB_METHODS:
            return None
        view_class = getattr(view_func, "view_class", None)
        if view_class is not None and issubclass(view_class, APIView):
            return None
        return HttpResponseNotAllowed(WEB_METHODS)
