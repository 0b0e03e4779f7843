"""Map domain errors raised by services to API responses: ValidationError to 400 with the
fields named, PermissionDenied to 403 (DRF already does), everything else as DRF does."""

from django.core.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler


def api_exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        body = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(body, status=400)
    return exception_handler(exc, context)
