"""REST API for importing judgments made elsewhere (docs/formats.md, "Existing judgments").

Like the transcript import: the upload creates a job that a worker runs, and the answer is
202 with the job's status URL (no request does the import's unbounded work).
"""

from django.core.exceptions import PermissionDenied
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from conversations.api import lead_file_job, rejects_file_response
from conversations.models import Project, Role
from conversations.services.access import require_role
from conversations.services.import_jobs import UploadTooLarge
from ratings.models import JudgmentImportJob
from ratings.services.judgment_import.jobs import judgment_import_job_create


@extend_schema_serializer(component_name="JudgmentImportJob")
class JudgmentImportJobOutputSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    progress = serializers.FloatField(read_only=True)
    status_url = serializers.SerializerMethodField()
    rejects_url = serializers.SerializerMethodField()

    class Meta:
        model = JudgmentImportJob
        fields = [
            "id",
            "project",
            "original_name",
            "skip_invalid",
            "count_for_quality",
            "state",
            "progress",
            "bytes_total",
            "bytes_read",
            "records_read",
            "imported",
            "duplicates",
            "rejected",
            "conflicts",
            "superseded",
            "items_created",
            "raters_created",
            "errors",
            "failure",
            "created_at",
            "started_at",
            "finished_at",
            "status_url",
            "rejects_url",
        ]

    def get_status_url(self, job: JudgmentImportJob) -> str:
        return reverse(
            "ratings-api:judgment-import-detail", args=[job.pk], request=self.context["request"]
        )

    def get_rejects_url(self, job: JudgmentImportJob) -> str | None:
        if not job.rejects_file:
            return None
        return reverse(
            "ratings-api:judgment-import-rejects", args=[job.pk], request=self.context["request"]
        )


class JudgmentImportApi(APIView):
    """Upload a JSONL file of judgments (leads); a worker imports it."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="JudgmentImportInput")
    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        skip_invalid = serializers.BooleanField(default=False)
        count_for_quality = serializers.BooleanField(
            default=False,
            help_text="The raters are the team's own: the judgments count for agreement, rater "
            "quality, gold accuracy and drift.",
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            202: OpenApiResponse(
                JudgmentImportJobOutputSerializer,
                description="Accepted: a worker imports the file; poll ``status_url`` (also "
                "the Location header) until ``state`` is succeeded or failed.",
            ),
            413: OpenApiResponse(description="Larger than RATELOOP_IMPORT_MAX_UPLOAD_BYTES."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        """Upload a file of judgments made elsewhere. Answers 202 with the job and its status
        URL; nothing is imported if a record is invalid, unless ``skip_invalid``."""
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
        try:
            job = judgment_import_job_create(
                project=project,
                user=request.user,
                upload=data.validated_data["file"],
                skip_invalid=data.validated_data["skip_invalid"],
                count_for_quality=data.validated_data["count_for_quality"],
            )
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc)) from None
        except UploadTooLarge as exc:
            return Response({"file": [str(exc)]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        body = JudgmentImportJobOutputSerializer(job, context={"request": request}).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]}
        )


class JudgmentImportJobDetailApi(APIView):
    @extend_schema(responses=JudgmentImportJobOutputSerializer)
    def get(self, request: Request, pk: int) -> Response:
        """Read a judgment import job's state, progress and counts, with every error found."""
        job = lead_file_job(request, JudgmentImportJob, pk)
        return Response(JudgmentImportJobOutputSerializer(job, context={"request": request}).data)


class JudgmentImportJobRejectsApi(APIView):
    """Download the records a judgment import skipped as invalid. JSONL, one record per line;
    404 when the job rejected none."""

    @extend_schema(responses={(200, "application/x-ndjson"): bytes})
    def get(self, request: Request, pk: int) -> FileResponse:
        return rejects_file_response(lead_file_job(request, JudgmentImportJob, pk))
