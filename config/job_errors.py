"""Web pages: a job that could not be queued (the broker is down) is answered 503 with a page
that says so and asks to try again, the HTML twin of config/api_errors.py. Views do not catch
``BrokerUnavailable``; the job row is already marked failed when it reaches here."""

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from conversations.jobs import BrokerUnavailable


class BrokerUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, BrokerUnavailable):
            return None
        response = TemplateResponse(
            request,
            "job_not_queued.html",
            {"message": str(exception), "back": request.get_full_path()},
            status=503,
        )
        response["Retry-After"] = "60"
        return response.render()
