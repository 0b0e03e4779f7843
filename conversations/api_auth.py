"""API log-in: trade a user name and password for the user's API token."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.auth import api_token_issue


class TokenCreateApi(APIView):
    """The caller's API token, for ``Authorization: Token <key>``. Wrong credentials answer
    400; after too many in a row for one user name, 429 until the lockout ends."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(source="key")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # Django's request: the lockout marks it, and its middleware answers 429.
        token = api_token_issue(request=request._request, **data.validated_data)
        return Response(self.OutputSerializer(token).data)
