"""Export API: start a job (202 + status URL), read its status, download its files."""

from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from conversations.models import Project
from conversations.services.access import require_role
from exports.exporters import REGISTRY
from exports.models import ExportJob
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
    return ExportJob.objects.filter(
        project__in=Project.objects.with_role(request.user, *EXPORT_ROLES)
    ).select_related("project")


class ExportListCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(list(REGISTRY))
        file_type = serializers.ChoiceField(["jsonl", "parquet", "csv"], default="jsonl")
        compress = serializers.BooleanField(default=False)
        options = serializers.DictField(required=False, default=dict)

    def get(self, request: Request, slug: str) -> Response:
        project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
        require_role(
            user=request.user, project=project, roles=EXPORT_ROLES, action="listing exports"
        )
        jobs = _jobs_for(request).filter(project=project)[:100]
        return Response(ExportJobSerializer(jobs, many=True, context={"request": request}).data)

    @extend_schema(request=InputSerializer, responses={202: ExportJobSerializer})
    def post(self, request: Request, slug: str) -> Response:
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
        job = get_object_or_404(_jobs_for(request), pk=pk)
        return Response(ExportJobSerializer(job, context={"request": request}).data)


class ExportFileApi(APIView):
    """Stream one file of a finished export."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, pk: int, name: str):
        job = get_object_or_404(_jobs_for(request), pk=pk)
        try:
            path = export_file_path(job=job, user=request.user, name=name)
        except ValidationError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
        return FileResponse(path.open("rb"), as_attachment=True, filename=name)
