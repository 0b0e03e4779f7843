"""REST API of the evaluation workflow. Each view parses, calls a service, renders."""

import copy

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.models import Project, Role
from conversations.services.access import project_of_member, require_role
from ratings.models import Assignment, Item, Judgment, TaskKind
from ratings.selectors import project_progress, rater_stats, task_view
from ratings.services.assignments import RATING_ROLES, assignment_next, assignment_skip
from ratings.services.items import (
    QueueFilter,
    item_promote_consensus,
    item_set_gold,
    items_queue,
)
from ratings.services.judgments import (
    NotYourAssignment,
    current_rubric,
    judgment_revise,
    judgment_submit,
)
from ratings.services.rubrics import rubric_set


def member_project(request: Request, slug: str) -> Project:
    """The project, if the user is a member; 404 otherwise (its existence is not revealed).
    It carries the user's role, read in the same query, for the services' role checks."""
    project = project_of_member(user=request.user, slug=slug)
    if project is None:
        raise Http404("No Project matches the given query.")
    return project


class SharedFieldsMixin:
    """Give each serializer shallow copies of the declared fields instead of DRF's deep
    copies, which cost about a tenth of the server's CPU on the rating path (every field is
    built again). A copy gets its own binding (name, parent); the rest (validators, error
    messages, a list or dict field's child) is shared and only read while validating. Only
    for serializers whose fields keep no per-request state and use no context: plain
    scalar, list and dict fields, as here."""

    def get_fields(self) -> dict:
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


class AnswerSerializer(SharedFieldsMixin, serializers.Serializer):
    scores = serializers.DictField(required=False)
    choice = serializers.CharField(required=False)
    both_bad = serializers.BooleanField(required=False)
    verdict = serializers.CharField(required=False)
    corrected_answer = serializers.CharField(required=False, allow_blank=True)
    missing_fact = serializers.CharField(required=False, allow_blank=True)
    kb_issues = serializers.ListField(child=serializers.DictField(), required=False)
    rationale = serializers.CharField(required=False, allow_blank=True)
    time_on_task_ms = serializers.IntegerField(required=False, min_value=0)


DATETIME = serializers.DateTimeField()


class JudgmentOutputSerializer(serializers.ModelSerializer):
    scores = serializers.SerializerMethodField()
    kind = serializers.CharField(source="item.kind")

    class Meta:
        model = Judgment
        fields = [
            "id",
            "item",
            "kind",
            "version",
            "is_current",
            "preference",
            "both_bad",
            "left_is_a",
            "verdict",
            "corrected_answer",
            "missing_fact",
            "kb_issues",
            "rationale",
            "time_on_task_ms",
            "rubric",
            "guidelines_version",
            "created_at",
            "scores",
        ]

    def get_scores(self, judgment: Judgment) -> dict:
        return {
            s.criterion.key: (s.value if s.value is not None else (s.choices or s.text))
            for s in judgment.scores.all()
        }

    def to_representation(self, judgment: Judgment) -> dict:
        """``Meta.fields``, read straight from the judgment: a ModelSerializer builds a field
        object per model field for every serializer made, about a fifth of the CPU of a
        submit. The fields still document the schema, and a test keeps this equal to the
        generic rendering."""
        return {
            "id": judgment.pk,
            "item": judgment.item_id,
            "kind": judgment.item.kind,
            "version": judgment.version,
            "is_current": judgment.is_current,
            "preference": judgment.preference,
            "both_bad": judgment.both_bad,
            "left_is_a": judgment.left_is_a,
            "verdict": judgment.verdict,
            "corrected_answer": judgment.corrected_answer,
            "missing_fact": judgment.missing_fact,
            "kb_issues": judgment.kb_issues,
            "rationale": judgment.rationale,
            "time_on_task_ms": judgment.time_on_task_ms,
            "rubric": judgment.rubric_id,
            "guidelines_version": judgment.guidelines_version,
            "created_at": DATETIME.to_representation(judgment.created_at),
            "scores": self.get_scores(judgment),
        }


class ProjectDetailApi(APIView):
    def get(self, request: Request, slug: str) -> Response:
        project = member_project(request, slug)
        rubric = current_rubric(project)
        return Response(
            {
                "slug": project.slug,
                "name": project.name,
                "guidelines": project.guidelines,
                "guidelines_version": project.guidelines_version,
                "overlap": project.overlap,
                "task_kinds": TaskKind.run_by(project),
                "rubric_version": rubric.version if rubric else None,
            }
        )


class RubricApi(APIView):
    class InputSerializer(serializers.Serializer):
        criteria = serializers.ListField(child=serializers.DictField())

    def get(self, request: Request, slug: str) -> Response:
        rubric = current_rubric(member_project(request, slug))
        if rubric is None:
            return Response({"version": None, "criteria": []})
        criteria = list(
            rubric.criteria.values(
                "key",
                "label",
                "description",
                "scale",
                "points",
                "anchors",
                "options",
                "required",
                "applies_to",
            )
        )
        return Response({"version": rubric.version, "criteria": criteria})

    @extend_schema(request=InputSerializer)
    def put(self, request: Request, slug: str) -> Response:
        project = member_project(request, slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rubric = rubric_set(
            project=project, user=request.user, criteria=data.validated_data["criteria"]
        )
        return Response({"version": rubric.version}, status=status.HTTP_200_OK)


class ItemQueueApi(APIView):
    class InputSerializer(serializers.Serializer):
        kinds = serializers.ListField(
            child=serializers.ChoiceField(TaskKind.values), required=False
        )
        source_format = serializers.CharField(required=False)
        source_name = serializers.CharField(required=False)
        model = serializers.CharField(required=False)
        occurred_from = serializers.DateTimeField(required=False)
        occurred_to = serializers.DateTimeField(required=False)
        metadata = serializers.DictField(required=False)
        external_ids = serializers.ListField(child=serializers.CharField(), required=False)
        priority = serializers.IntegerField(
            required=False, default=0, min_value=-100, max_value=100
        )
        all_turns = serializers.BooleanField(required=False, default=False)

    @extend_schema(request=InputSerializer)
    def post(self, request: Request, slug: str) -> Response:
        project = member_project(request, slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        queue_filter = QueueFilter(
            source_format=v.get("source_format"),
            source_name=v.get("source_name"),
            model=v.get("model"),
            occurred_from=v.get("occurred_from"),
            occurred_to=v.get("occurred_to"),
            metadata=v.get("metadata"),
            external_ids=tuple(v["external_ids"]) if "external_ids" in v else None,
        )
        counts = items_queue(
            project=project,
            user=request.user,
            kinds=tuple(v.get("kinds") or ()) or None,
            queue_filter=queue_filter,
            priority=v["priority"],
            all_turns=v["all_turns"],
        )
        return Response({"created": counts}, status=status.HTTP_201_CREATED)


class ItemListApi(APIView):
    class OutputSerializer(serializers.ModelSerializer):
        conversation = serializers.CharField(source="conversation.external_id")

        class Meta:
            model = Item
            fields = [
                "id",
                "kind",
                "conversation",
                "response",
                "response_b",
                "overlap",
                "n_active",
                "n_done",
                "priority",
                "is_gold",
                "is_retired",
                "created_at",
            ]

    def get(self, request: Request, slug: str) -> Response:
        project = member_project(request, slug)
        require_role(user=request.user, project=project, roles=(Role.LEAD,), action="listing items")
        items = Item.objects.filter(project=project).select_related("conversation").order_by("id")
        if kind := request.query_params.get("kind"):
            items = items.filter(kind=kind)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class NextApi(APIView):
    """Lease my next item (or return my live lease). 204 when nothing is left for me."""

    class InputSerializer(SharedFieldsMixin, serializers.Serializer):
        kind = serializers.ChoiceField(TaskKind.values, required=False)

    @extend_schema(request=InputSerializer)
    def post(self, request: Request, slug: str) -> Response:
        project = member_project(request, slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = assignment_next(
            project=project, rater=request.user, kind=data.validated_data.get("kind")
        )
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(task_view(assignment))


def own_assignment(request: Request, pk: int) -> Assignment:
    return get_object_or_404(
        Assignment.objects.select_related("item__project"), pk=pk, rater=request.user
    )


class SubmitApi(APIView):
    @extend_schema(request=AnswerSerializer, responses={201: JudgmentOutputSerializer})
    def post(self, request: Request, pk: int) -> Response:
        data = AnswerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answer = dict(data.validated_data)
        spent = answer.pop("time_on_task_ms", None)
        try:
            # the service reads the assignment itself: reading it here too would cost a query
            judgment = judgment_submit(
                assignment=pk, rater=request.user, answer=answer, time_on_task_ms=spent
            )
        except (Assignment.DoesNotExist, NotYourAssignment) as exc:
            # someone else's assignment is not found either: its existence is not revealed
            raise Http404 from exc
        return Response(JudgmentOutputSerializer(judgment).data, status=status.HTTP_201_CREATED)


class SkipApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer)
    def post(self, request: Request, pk: int) -> Response:
        assignment = own_assignment(request, pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment_skip(
            assignment=assignment, rater=request.user, reason=data.validated_data["reason"]
        )
        return Response({"state": "skipped"})


class MyJudgmentListApi(APIView):
    def get(self, request: Request, slug: str) -> Response:
        project = member_project(request, slug)
        judgments = (
            Judgment.objects.filter(item__project=project, rater=request.user)
            .select_related("item")
            .prefetch_related("scores__criterion")
            .order_by("-created_at", "-version")
        )
        if request.query_params.get("current") == "1":
            judgments = judgments.filter(is_current=True)
        return Response(JudgmentOutputSerializer(judgments[:500], many=True).data)


class ReviseApi(APIView):
    @extend_schema(request=AnswerSerializer, responses={201: JudgmentOutputSerializer})
    def post(self, request: Request, pk: int) -> Response:
        judgment = get_object_or_404(Judgment, pk=pk, rater=request.user)
        data = AnswerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answer = dict(data.validated_data)
        spent = answer.pop("time_on_task_ms", None)
        new = judgment_revise(
            judgment=judgment, rater=request.user, answer=answer, time_on_task_ms=spent
        )
        return Response(JudgmentOutputSerializer(new).data, status=status.HTTP_201_CREATED)


class MyStatsApi(APIView):
    def get(self, request: Request, slug: str) -> Response:
        project = member_project(request, slug)
        role = require_role(
            user=request.user, project=project, roles=RATING_ROLES, action="rating stats"
        )
        return Response(rater_stats(project=project, rater=request.user, role=role))


class ProgressApi(APIView):
    def get(self, request: Request, slug: str) -> Response:
        project = member_project(request, slug)
        require_role(
            user=request.user, project=project, roles=(Role.LEAD,), action="seeing progress"
        )
        return Response(project_progress(project))


class ItemGoldApi(APIView):
    """Mark an item as gold with its known answer (``answer`` null to unmark), or promote the
    raters' consensus (``{"promote_consensus": true}``). Leads only."""

    class InputSerializer(serializers.Serializer):
        answer = serializers.DictField(required=False, allow_null=True)
        promote_consensus = serializers.BooleanField(default=False)

    @extend_schema(request=InputSerializer)
    def post(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(
            Item.objects.filter(project__in=Project.objects.visible_to(request.user)), pk=pk
        )
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["promote_consensus"]:
            item = item_promote_consensus(item=item, user=request.user)
        else:
            item = item_set_gold(
                item=item, user=request.user, answer=data.validated_data.get("answer")
            )
        return Response({"id": item.pk, "is_gold": item.is_gold, "gold_answer": item.gold_answer})
