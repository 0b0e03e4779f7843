"""Map domain errors raised by services to API responses: ValidationError to 400 with the
fields named, PermissionDenied to 403 (DRF already does), BrokerUnavailable (a job that could not
be queued) to 503 with Retry-After, everything else as DRF does."""

from django.core.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from conversations.jobs import BrokerUnavailable


def api_exception_handler(exc, context):
    if isinstance(exc, BrokerUnavailable):  # the job, if any, is already marked failed
        body = {"detail": str(exc)}
        if exc.job is not None:
            body["job_id"] = exc.job.pk
        return Response(body, status=503, headers={"Retry-After": "60"})
    if isinstance(exc, ValidationError):
        body = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(body, status=400)
    return exception_handler(exc, context)
