"""REST API of the conversations app: projects and transcript import jobs."""

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from conversations.models import ImportJob, Project, Role, SourceFormat
from conversations.services.access import require_role, role_of
from conversations.services.import_jobs import UploadTooLarge, import_job_create


class ProjectListApi(APIView):
    class OutputSerializer(serializers.ModelSerializer):
        role = serializers.SerializerMethodField()

        class Meta:
            model = Project
            fields = ["id", "slug", "name", "description", "overlap", "gold_rate", "role"]

        def get_role(self, project: Project) -> str | None:
            return role_of(user=self.context["request"].user, project=project)

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        """List the projects I am a member of, with my role in each."""
        projects = Project.objects.with_viewer_role(request.user)
        data = self.OutputSerializer(projects, many=True, context={"request": request}).data
        return Response(data)


class ImportJobOutputSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    progress = serializers.FloatField(read_only=True)
    status_url = serializers.SerializerMethodField()
    rejects_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "project",
            "original_name",
            "format",
            "skip_invalid",
            "state",
            "progress",
            "bytes_total",
            "bytes_read",
            "records_read",
            "imported",
            "duplicates",
            "rejected",
            "errors",
            "failure",
            "created_at",
            "started_at",
            "finished_at",
            "status_url",
            "rejects_url",
        ]

    def get_status_url(self, job: ImportJob) -> str:
        return reverse("api:import-detail", args=[job.pk], request=self.context.get("request"))

    def get_rejects_url(self, job: ImportJob) -> str | None:
        if not job.rejects_file:
            return None
        return reverse("api:import-rejects", args=[job.pk], request=self.context.get("request"))


class ImportJobCreateApi(APIView):
    """Upload a transcript file; a worker imports it. Answers 202 with the job's status URL."""

    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        format = serializers.ChoiceField(choices=SourceFormat.values, required=False)
        skip_invalid = serializers.BooleanField(default=False)

    @extend_schema(
        request=InputSerializer,
        responses={
            202: OpenApiResponse(
                ImportJobOutputSerializer,
                description="Accepted: a worker imports the file; poll ``status_url`` (also "
                "the Location header) until ``state`` is succeeded or failed.",
            ),
            413: OpenApiResponse(description="Larger than RATELOOP_IMPORT_MAX_UPLOAD_BYTES."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        """Upload a transcript file to import (leads). Answers 202 with the job and its status
        URL; the format is detected unless given (docs/formats.md). Nothing is imported if a
        record is invalid, unless ``skip_invalid``."""
        project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
        try:
            # refuse non-leads before looking at what they sent
            require_role(
                user=request.user,
                project=project,
                roles=(Role.LEAD,),
                action="importing transcripts",
            )
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc)) from None
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = import_job_create(
                project=project,
                user=request.user,
                upload=data.validated_data["file"],
                fmt=data.validated_data.get("format"),
                skip_invalid=data.validated_data["skip_invalid"],
            )
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc)) from None
        except UploadTooLarge as exc:
            return Response({"file": [str(exc)]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except ValueError as exc:
            raise ApiValidationError({"format": [str(exc)]}) from None
        body = ImportJobOutputSerializer(job, context={"request": request}).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]}
        )


def lead_file_job(request: Request, model, pk: int):
    """The import job (``ImportJob`` or ``ratings.JudgmentImportJob``) ``pk`` of a project the
    user leads; 404 otherwise."""
    jobs = model.objects.filter(
        project__in=Project.objects.with_role(request.user, Role.LEAD)
    ).select_related("project")
    return get_object_or_404(jobs, pk=pk)


def rejects_file_response(job) -> FileResponse:
    """The records an import job skipped as invalid, as a JSONL download; 404 without any."""
    if not job.rejects_file:
        raise Http404("this job rejected no record")
    return FileResponse(
        job.rejects_file.open("rb"),
        as_attachment=True,
        filename=f"{job.original_name}.rejects.jsonl",
        content_type="application/x-ndjson",
    )


class ImportJobDetailApi(APIView):
    @extend_schema(responses=ImportJobOutputSerializer)
    def get(self, request: Request, pk: int) -> Response:
        """Read an import job's state, progress and counts, with every error found."""
        job = lead_file_job(request, ImportJob, pk)
        return Response(ImportJobOutputSerializer(job, context={"request": request}).data)


class ImportJobRejectsApi(APIView):
    """Download the records a job skipped as invalid. JSONL, one record per line; 404 when
    the job rejected none."""

    @extend_schema(responses={(200, "application/x-ndjson"): bytes})
    def get(self, request: Request, pk: int) -> FileResponse:
        return rejects_file_response(lead_file_job(request, ImportJob, pk))
