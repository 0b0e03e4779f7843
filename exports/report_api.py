"""The reports as data: JSON, and CSV with ``?format=csv`` (leads and data consumers).

Same builders as the pages (``exports/reports/``); see ``docs/reports.md`` for every
column.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.renderers import CSVRenderer
from conversations.models import Project
from conversations.services.access import require_role
from exports.reports import (
    BOOT_LIMITS,
    DEFAULT_BOOT,
    REPORT_ROLES,
    KBFilters,
    KBReport,
    boot_limit,
    kb_report,
    leaderboard_csv_rows,
    leaderboard_report,
    rater_names_visible,
)


def report_project(request: Request, slug: str) -> tuple[Project, str]:
    """The project (404 for non-members; 403 unless lead or consumer) and the reader's role."""
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    role = require_role(
        user=request.user, project=project, roles=REPORT_ROLES, action="seeing reports"
    )
    return project, role


class ReportApi(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]

    def is_csv(self, request: Request) -> bool:
        return request.accepted_renderer.format == "csv"


class KBFilterSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, allow_null=True)
    date_to = serializers.DateField(required=False, allow_null=True)
    model = serializers.CharField(required=False, allow_blank=True, default="")
    topic = serializers.CharField(required=False, allow_blank=True, default="")
    include_external = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        if (
            attrs.get("date_from")
            and attrs.get("date_to")
            and attrs["date_from"] > attrs["date_to"]
        ):
            raise serializers.ValidationError("date_from is after date_to")
        return attrs


def _kb(request: Request, slug: str) -> KBReport:
    project, role = report_project(request, slug)
    data = KBFilterSerializer(data=request.query_params)
    data.is_valid(raise_exception=True)
    return kb_report(
        project=project,
        filters=KBFilters(**data.validated_data),
        reveal_raters=rater_names_visible(project=project, role=role),
    )


class KBReportApi(ReportApi):
    """KB correctness. JSON: the whole report; CSV: one row per article (most cited first)."""

    @extend_schema(parameters=[KBFilterSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        report = _kb(request, slug)
        if self.is_csv(request):
            return Response(report.articles)
        return Response(
            {
                "filters": report.filters.as_dict(),
                "totals": report.totals,
                "undated": report.undated,
                "articles": report.articles,
                "sources": report.sources,
                "weekly": report.weekly,
                "answers": report.answers,
            }
        )


class KBSourcesApi(ReportApi):
    """KB correctness per source (format and name): one row each."""

    @extend_schema(parameters=[KBFilterSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        return Response(_kb(request, slug).sources)


class KBWeeklyApi(ReportApi):
    """KB correctness per week (Monday of the week the conversations happened)."""

    @extend_schema(parameters=[KBFilterSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        return Response(_kb(request, slug).weekly)


def _joined(lines: list[str]) -> str:
    return "\n".join(line for line in lines if line)


class KBAnswersApi(ReportApi):
    """The wrong and incomplete answers. JSON keeps corrections as lists; CSV has one row
    per answer with the corrections joined one per line, each prefixed by its rater."""

    @extend_schema(parameters=[KBFilterSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        answers = _kb(request, slug).answers
        if not self.is_csv(request):
            return Response(answers)
        rows = []
        for a in answers:
            rows.append(
                {
                    "item_id": a["item_id"],
                    "conversation": a["conversation"],
                    "source_format": a["source_format"],
                    "source_name": a["source_name"],
                    "occurred_at": a["occurred_at"].isoformat() if a["occurred_at"] else "",
                    "model": a["model"],
                    "topic": a["topic"],
                    "articles": "; ".join(a["articles"]),
                    "citations": a["citations"],
                    "verdict": a["verdict"],
                    "votes": "; ".join(f"{v}: {n}" for v, n in a["votes"].items()),
                    "question": a["question"],
                    "answer": a["answer"],
                    "corrected_answers": _joined(
                        [
                            f"{c['rater']}: {c['corrected_answer']}"
                            if c["corrected_answer"]
                            else ""
                            for c in a["corrections"]
                        ]
                    ),
                    "missing_facts": _joined(
                        [
                            f"{c['rater']}: {c['missing_fact']}" if c["missing_fact"] else ""
                            for c in a["corrections"]
                        ]
                    ),
                    "kb_issues": "; ".join(
                        f"{i['article_id'] or '(unnamed)'} {i['problem']}" for i in a["kb_issues"]
                    ),
                    "raters": "; ".join(dict.fromkeys(c["rater"] for c in a["corrections"])),
                }
            )
        return Response(rows)


class LeaderboardApi(ReportApi):
    """Model leaderboard. JSON: ratings, intervals, ranks, matrix, position bias, rubric
    means; CSV: one row per model (rating, lower, upper, rank, wins, ties, losses, battles,
    then the mean and count of every numeric rubric criterion)."""

    class InputSerializer(serializers.Serializer):
        include_external = serializers.BooleanField(required=False, default=False)
        n_boot = serializers.IntegerField(
            required=False,
            min_value=1,
            default=DEFAULT_BOOT,
            help_text="Bootstrap replicates: at most "
            + ", ".join(f"{n} for a {role}" for role, n in BOOT_LIMITS.items()),
        )
        seed = serializers.IntegerField(required=False, min_value=0, default=0)
        confidence = serializers.FloatField(
            required=False, min_value=0.5, max_value=0.999, default=0.95
        )

        def validate_n_boot(self, value: int) -> int:
            # the reader's role decides the maximum (BOOT_LIMITS), so no max_value above
            limit = boot_limit(self.context.get("role"))
            if value > limit:
                raise serializers.ValidationError(
                    f"at most {limit} bootstrap replicates for your role"
                )
            return value

    @extend_schema(parameters=[InputSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        project, role = report_project(request, slug)
        data = self.InputSerializer(data=request.query_params, context={"role": role})
        data.is_valid(raise_exception=True)
        board = leaderboard_report(project=project, **data.validated_data)
        if self.is_csv(request):
            return Response(leaderboard_csv_rows(board))
        return Response(
            {
                "status": board.status,
                "message": board.message,
                "components": board.components,
                "models": board.rows,
                "matrix": board.matrix,
                "position_bias": board.position_bias,
                "criteria": board.criteria,
                "n_battles": board.n_battles,
                "skipped_same_model": board.skipped_same_model,
                "skipped_no_model": board.skipped_no_model,
                "n_boot": board.n_boot,
                "n_boot_used": board.n_boot_used,
                "seed": board.seed,
                "confidence": board.confidence,
                "include_external": board.include_external,
            }
        )
