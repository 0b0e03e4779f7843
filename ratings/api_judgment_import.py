"""REST API for importing judgments made elsewhere (docs/formats.md, "Existing judgments").

The import runs in the request, synchronously, for files up to ``SYNC_IMPORT_MAX_BYTES``;
larger files go through ``manage.py import_judgments``.
"""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.models import Project, Role
from conversations.services.access import require_role
from ratings.services.judgment_import import JudgmentImportFailed, judgment_import

SYNC_IMPORT_MAX_BYTES = 20 * 1024 * 1024


class JudgmentImportApi(APIView):
    """Upload a JSONL file of judgments; answers 201 with the summary, or 400 with every error
    (nothing imported unless ``skip_invalid``). Leads only."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="JudgmentImportInput")
    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        skip_invalid = serializers.BooleanField(default=False)

    @extend_schema_serializer(component_name="JudgmentImportSummary")
    class OutputSerializer(serializers.Serializer):
        source = serializers.CharField()
        records_read = serializers.IntegerField()
        imported = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        rejected = serializers.IntegerField()
        conflicts = serializers.IntegerField()
        superseded = serializers.IntegerField()
        items_created = serializers.IntegerField()
        raters_created = serializers.IntegerField()
        error_count = serializers.IntegerField()
        errors = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(OutputSerializer, description="Invalid records; none imported."),
            413: OpenApiResponse(description="Too large to import in the request."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
        try:
            # refuse non-leads before looking at what they sent
            require_role(
                user=request.user, project=project, roles=(Role.LEAD,), action="importing judgments"
            )
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc)) from None
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size and upload.size > SYNC_IMPORT_MAX_BYTES:
            return Response(
                {
                    "file": [
                        f"larger than {SYNC_IMPORT_MAX_BYTES // (1024 * 1024)} MiB; "
                        "import it with manage.py import_judgments"
                    ]
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        name = (upload.name or "upload").rsplit("/", 1)[-1]
        try:
            summary = judgment_import(
                project=project,
                stream=upload,
                source_name=name,
                user=request.user,
                skip_invalid=data.validated_data["skip_invalid"],
            )
        except JudgmentImportFailed as exc:
            body = self.OutputSerializer(exc.summary.as_dict()).data
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            self.OutputSerializer(summary.as_dict()).data, status=status.HTTP_201_CREATED
        )
