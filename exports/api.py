"""Export API: start a job (202 + status URL), read its status, download its files."""

from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from conversations.models import Project
from conversations.services.access import require_role
from exports.exporters import REGISTRY
from exports.models import ExportJob
from exports.selectors import export_job_list
from exports.services import EXPORT_ROLES, export_file_path, export_job_create


class ExportJobSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    status_url = serializers.SerializerMethodField()
    downloads = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "project",
            "format",
            "file_type",
            "compress",
            "options",
            "state",
            "progress",
            "rows_written",
            "counts",
            "manifest",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "status_url",
            "downloads",
        ]

    def get_status_url(self, job: ExportJob) -> str:
        return reverse("exports-api:detail", args=[job.pk], request=self.context.get("request"))

    def get_downloads(self, job: ExportJob) -> list[dict]:
        request = self.context.get("request")
        return (
            [
                {**f, "url": reverse("exports-api:file", args=[job.pk, f["name"]], request=request)}
                for f in job.files
            ]
            if job.state == "succeeded"
            else []
        )


def _jobs_for(request: Request):
    return export_job_list(user=request.user).select_related("project")


class ExportListCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(list(REGISTRY))
        file_type = serializers.ChoiceField(["jsonl", "parquet", "csv"], default="jsonl")
        compress = serializers.BooleanField(default=False)
        options = serializers.DictField(required=False, default=dict)

    @extend_schema(responses=ExportJobSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        """List the project's export jobs (leads and data consumers), newest first, at most
        100."""
        project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
        require_role(
            user=request.user, project=project, roles=EXPORT_ROLES, action="listing exports"
        )
        jobs = _jobs_for(request).filter(project=project)[:100]
        return Response(ExportJobSerializer(jobs, many=True, context={"request": request}).data)

    @extend_schema(
        request=InputSerializer,
        responses={
            202: OpenApiResponse(
                ExportJobSerializer,
                description="Accepted: a worker writes the files; poll ``status_url`` (also "
                "the Location header) until ``state`` is succeeded, then follow ``downloads``.",
            )
        },
        examples=[
            OpenApiExample(
                "Preference pairs, Parquet",
                value={"format": "trl", "file_type": "parquet", "options": {"test_fraction": 0.1}},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        """Start an export job (leads and data consumers). Answers 202 with the job and its
        status URL; the options of each format are on the exports page and in
        docs/formats.md."""
        project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
        require_role(user=request.user, project=project, roles=EXPORT_ROLES, action="exporting")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        job = export_job_create(
            project=project,
            user=request.user,
            fmt=v["format"],
            file_type=v["file_type"],
            compress=v["compress"],
            values=v["options"],
        )
        body = ExportJobSerializer(job, context={"request": request}).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]}
        )


class ExportDetailApi(APIView):
    @extend_schema(responses=ExportJobSerializer)
    def get(self, request: Request, pk: int) -> Response:
        """Read an export job's state, progress and, once it succeeded, its downloads."""
        job = get_object_or_404(_jobs_for(request), pk=pk)
        return Response(ExportJobSerializer(job, context={"request": request}).data)


class ExportFileApi(APIView):
    """Download one file of a finished export. 409 while the job has not succeeded."""

    @extend_schema(
        responses={
            (200, "application/octet-stream"): bytes,
            409: OpenApiResponse(description="The job has not succeeded (yet)."),
        }
    )
    def get(self, request: Request, pk: int, name: str):
        job = get_object_or_404(_jobs_for(request), pk=pk)
        try:
            path = export_file_path(job=job, user=request.user, name=name)
        except ValidationError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
        return FileResponse(path.open("rb"), as_attachment=True, filename=name)
