"""How the OpenAPI schema names and summarises the API's operations.

Every API view nests its serializers as ``InputSerializer`` / ``OutputSerializer`` (house
style), so the generator's default component name ("Input") would collide between views and
one view's body would be documented for another's. Here a nested serializer is named after
its view: ``NextApi.InputSerializer`` becomes ``NextInput``.

An operation's summary is the first sentence of its method's docstring (or the view's); its
description is the rest. The error answers every operation shares (400 for a body that fails
validation, 401 without valid credentials, 403 for a role that may not, 404 for what the
caller cannot see) are added once here rather than on each view.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import get_doc
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """An error: ``detail`` says what went wrong."""

    detail = serializers.CharField()


# A body that failed validation: {field: [messages]}, one entry per bad field (``detail``
# for what concerns no one field). A rubric's nested fields are named in full
# (``scores.accuracy``).
VALIDATION_ERROR = {
    "type": "object",
    "description": "Each bad field with its messages.",
    "additionalProperties": {
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
    },
    "example": {"kind": ["This field is required."]},
}


ERRORS = {
    "400": "The body failed validation: every bad field is named with its messages.",
    "401": "No credentials, or a token that is not valid (see the WWW-Authenticate header).",
    "403": "Your role in this project does not allow this.",
    "404": "Not found, or not visible to you (other projects are not revealed).",
}


def _split_doc(doc: str) -> tuple[str, str]:
    """(first sentence, the rest) of a docstring, on one line each."""
    text = " ".join(doc.split())
    if not text:
        return "", ""
    end = text.find(". ")
    if end == -1:
        return text.rstrip("."), ""
    return text[:end], text[end + 2 :]


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer, direction) -> str:
        view, *nested = serializer.__class__.__qualname__.split(".")
        if not nested:
            return super().get_serializer_name(serializer, direction)
        return view.removesuffix("Api") + "".join(n.removesuffix("Serializer") for n in nested)

    def _docstring(self) -> str:
        method = getattr(self.view, getattr(self.view, "action", self.method.lower()), None)
        return get_doc(method) or get_doc(self.view.__class__)

    def get_summary(self) -> str | None:
        return _split_doc(self._docstring())[0] or None

    def get_description(self) -> str:
        return _split_doc(self._docstring())[1]

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = []
        if self.method in ("POST", "PUT", "PATCH") and self._get_request_body() is not None:
            codes.append("400")
        auth = self.get_auth()
        if auth and {} not in auth:  # {}: the operation is open to anonymous callers
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        for code in codes:
            if code not in responses:
                body = VALIDATION_ERROR if code == "400" else ErrorSerializer
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(body, description=ERRORS[code]), code
                )
        return responses
