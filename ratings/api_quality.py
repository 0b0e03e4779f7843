"""Quality data for leads: every chart's data as JSON and (``?format=csv``) CSV."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.renderers import CSVRenderer
from conversations.models import Project, Role
from conversations.services.access import require_role
from ratings.models import DriftFlag, FlagState, RunState, TaskKind
from ratings.quality_selectors import (
    agreement_history,
    latest_run,
    project_rater,
    quality_status,
    rater_table,
    rater_trend,
)
from ratings.services.quality import flag_update, quality_request


def lead_project(request: Request, slug: str) -> Project:
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    require_role(
        user=request.user, project=project, roles=(Role.LEAD,), action="seeing quality data"
    )
    return project


class QualityApi(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]


FORMAT = OpenApiParameter("format", str, enum=["json", "csv"], description="csv: one row per line")


def data_schema(json_schema: dict, summary_csv: str = "the rows as CSV") -> dict:
    """The answers of a quality data view: JSON, or CSV with ``?format=csv``."""
    return {
        (200, "application/json"): json_schema,
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=summary_csv),
    }


ROWS = {"type": "array", "items": {"type": "object", "additionalProperties": True}}
OBJECT = {"type": "object", "additionalProperties": True}


class AgreementApi(QualityApi):
    """Agreement history: one row per run, kind, criterion and metric (with its interval)."""

    class FilterSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(TaskKind.values, required=False)
        criterion = serializers.CharField(
            required=False, allow_blank=True, max_length=64, help_text="empty: overall"
        )
        metric = serializers.CharField(required=False, max_length=64)

    @extend_schema(parameters=[FilterSerializer, FORMAT], responses=data_schema(ROWS))
    def get(self, request: Request, slug: str) -> Response:
        project = lead_project(request, slug)
        data = self.FilterSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)  # 400 names the bad parameter (a NUL, a kind)
        return Response(agreement_history(project, **data.validated_data))


class RaterTableApi(QualityApi):
    """Per-rater quality of the latest run: agreement with the others, gold accuracy, speed
    and flags."""

    @extend_schema(parameters=[FORMAT], responses=data_schema(ROWS))
    def get(self, request: Request, slug: str) -> Response:
        project = lead_project(request, slug)
        return Response(rater_table(project, latest_run(project)))


class RaterTrendApi(QualityApi):
    """One rater's agreement per day, with their drift flags."""

    @extend_schema(
        parameters=[FORMAT],
        responses=data_schema(OBJECT, "the days as CSV (day, agreement, judgments)"),
    )
    def get(self, request: Request, slug: str, rater_id: int) -> Response:
        project = lead_project(request, slug)
        if project_rater(project, rater_id) is None:
            raise Http404("no such rater in this project")
        trend, flags = rater_trend(project, rater_id)
        rows = [{"day": d, "agreement": a, "judgments": n} for d, a, n in trend]
        if request.accepted_renderer.format == "csv":
            return Response(rows)
        return Response({"trend": rows, "flags": flags})


class ConfusionApi(QualityApi):
    """The latest run's coincidence matrices: how often raters paired each two answers."""

    @extend_schema(
        parameters=[FORMAT],
        responses=data_schema(
            OBJECT, "one row per block, label and label (block, label, with, pairs)"
        ),
    )
    def get(self, request: Request, slug: str) -> Response:
        run = latest_run(lead_project(request, slug))
        confusion = run.confusion if run else {}
        if request.accepted_renderer.format == "csv":
            rows = [
                {"block": name, "label": labels_i, "with": labels_j, "pairs": value}
                for name, block in confusion.items()
                for labels_i, row in zip(block["labels"], block["matrix"], strict=True)
                for labels_j, value in zip(block["labels"], row, strict=True)
            ]
            return Response(rows)
        return Response(confusion)


class ContestedApi(QualityApi):
    """The latest run's most contested items, where raters disagree most."""

    @extend_schema(parameters=[FORMAT], responses=data_schema(ROWS))
    def get(self, request: Request, slug: str) -> Response:
        run = latest_run(lead_project(request, slug))
        return Response(run.contested if run else [])


class QualityRunApi(APIView):
    """Ask for a quality run now. A worker computes it; answers 202."""

    class StatusSerializer(serializers.Serializer):
        class RunSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            state = serializers.ChoiceField(RunState.choices)
            trigger = serializers.CharField()
            started_at = serializers.DateTimeField()
            finished_at = serializers.DateTimeField(allow_null=True)
            error = serializers.CharField(allow_blank=True)

        latest_run = RunSerializer(allow_null=True)
        running = serializers.BooleanField()
        up_to_date = serializers.BooleanField(
            help_text="the newest finished run saw every current judgment"
        )

    @extend_schema(responses=StatusSerializer)
    def get(self, request: Request, slug: str) -> Response:
        """Read where the quality figures stand (leads). Poll this after asking for a run:
        it is over when ``running`` is false and ``up_to_date`` is true (or the newest run
        failed)."""
        return Response(quality_status(lead_project(request, slug)))

    class QueuedSerializer(serializers.Serializer):
        queued = serializers.BooleanField()

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(
                QueuedSerializer,
                description="Queued: poll GET on this address until the run is over.",
            )
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
        quality_request(project=project, user=request.user)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class FlagUpdateApi(APIView):
    """Acknowledge or resolve a drift flag, with a note (leads)."""

    class InputSerializer(serializers.Serializer):
        state = serializers.ChoiceField(FlagState.choices)
        note = serializers.CharField(required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        state = serializers.ChoiceField(FlagState.choices)
        note = serializers.CharField(allow_blank=True)

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        flag = get_object_or_404(
            DriftFlag.objects.filter(project__in=Project.objects.visible_to(request.user)), pk=pk
        )
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        flag = flag_update(
            flag=flag,
            user=request.user,
            state=data.validated_data["state"],
            note=data.validated_data["note"],
        )
        return Response({"id": flag.pk, "state": flag.state, "note": flag.note})
