"""REST API of the evaluation workflow. Each view parses, calls a service, renders."""

import copy

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.models import Project, Role
from conversations.services.access import project_of_member, require_role
from ratings.models import Assignment, Item, Judgment, TaskKind, Verdict
from ratings.selectors import project_progress, rater_stats, task_view
from ratings.services.assignments import RATING_ROLES, assignment_next, assignment_skip
from ratings.services.items import (
    QueueFilter,
    item_promote_consensus,
    item_set_gold,
    items_queue,
)
from ratings.services.judgments import (
    DISPLAY_CHOICES,
    NotYourAssignment,
    answer_as_given,
    answer_text,
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
    """A rater's answer; which fields apply depends on the item's kind. Score items:
    ``scores`` ({criterion key: whole number, "yes"/"no", an option, a list of options or
    text}). Pairwise items: ``choice`` on the sides as shown (``left_much_better`` ...
    ``right_much_better``), optional ``both_bad`` and per-criterion ``scores`` in the same
    terms. KB items: ``verdict``, with ``corrected_answer`` (incorrect) or ``missing_fact``
    (incomplete) and optional ``kb_issues``. The rubric checks the answer: every bad field is
    named in a 400."""

    scores = serializers.DictField(required=False)
    choice = serializers.ChoiceField(list(DISPLAY_CHOICES), required=False)
    both_bad = serializers.BooleanField(required=False)
    verdict = serializers.ChoiceField(Verdict.choices, required=False)
    corrected_answer = serializers.CharField(required=False, allow_blank=True)
    missing_fact = serializers.CharField(required=False, allow_blank=True)
    kb_issues = serializers.ListField(child=serializers.DictField(), required=False)
    rationale = serializers.CharField(required=False, allow_blank=True)
    time_on_task_ms = serializers.IntegerField(required=False, min_value=0)


ANSWER_EXAMPLES = [
    OpenApiExample(
        "Score item",
        value={"scores": {"helpfulness": 4, "accuracy": 3, "safe": "yes", "tone": "warm"}},
        request_only=True,
    ),
    OpenApiExample(
        "Pairwise item",
        value={"choice": "right_much_better", "both_bad": False, "rationale": "B cites a source"},
        request_only=True,
    ),
    OpenApiExample(
        "KB item",
        value={"verdict": "incorrect", "corrected_answer": "Refunds take 14 days, not 30."},
        request_only=True,
    ),
]


class TaskResponseSerializer(serializers.Serializer):
    slot = serializers.ChoiceField(["response", "left", "right"])
    content = serializers.CharField()
    kb_references = serializers.ListField(child=serializers.DictField())


class TaskMessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()
    name = serializers.CharField(allow_blank=True)


class TaskCriterionSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    scale = serializers.CharField()
    points = serializers.IntegerField(allow_null=True)
    anchors = serializers.ListField(child=serializers.CharField())
    options = serializers.ListField(child=serializers.CharField())
    required = serializers.BooleanField()


class TaskSerializer(serializers.Serializer):
    """What a rater sees of one leased item (never the model's name or whether it is gold).
    Pairwise responses come as ``left`` and ``right``, in the order shown."""

    assignment_id = serializers.IntegerField()
    kind = serializers.ChoiceField(TaskKind.choices)
    project = serializers.SlugField()
    lease_expires_at = serializers.DateTimeField()
    context = TaskMessageSerializer(many=True)
    responses = TaskResponseSerializer(many=True)
    rubric_version = serializers.IntegerField(allow_null=True)
    criteria = TaskCriterionSerializer(many=True)
    guidelines_version = serializers.IntegerField()


DATETIME = serializers.DateTimeField()


class JudgmentOutputSerializer(serializers.ModelSerializer):
    """A judgment. ``answer`` is the answer as the rater gave it (the shape a submit takes:
    sides as shown, option names, "yes"/"no", whole numbers) and ``answer_text`` says it in
    words; ``preference`` and ``scores`` are the stored values (pairwise ones on the true
    responses A/B: negative means A is better)."""

    scores = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(TaskKind.choices, source="item.kind")
    answer = serializers.SerializerMethodField()
    answer_text = serializers.SerializerMethodField()

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
            "answer",
            "answer_text",
        ]

    def get_answer(self, judgment: Judgment) -> dict:
        return answer_as_given(judgment)

    def get_answer_text(self, judgment: Judgment) -> str:
        return answer_text(judgment)

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
            "answer": answer_as_given(judgment),
            "answer_text": answer_text(judgment),
        }


class ProjectDetailApi(APIView):
    class OutputSerializer(serializers.Serializer):
        slug = serializers.SlugField()
        name = serializers.CharField()
        guidelines = serializers.CharField(help_text="Markdown")
        guidelines_version = serializers.IntegerField()
        overlap = serializers.IntegerField()
        task_kinds = serializers.ListField(child=serializers.ChoiceField(TaskKind.choices))
        rubric_version = serializers.IntegerField(allow_null=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        """Read a project I am a member of: its guidelines, overlap, kinds and rubric version."""
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

    class OutputSerializer(serializers.Serializer):
        version = serializers.IntegerField(allow_null=True)
        criteria = serializers.ListField(child=serializers.DictField())

    class VersionSerializer(serializers.Serializer):
        version = serializers.IntegerField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        """Read the project's current rubric. ``version`` null and no criteria when it has
        none."""
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

    @extend_schema(
        request=InputSerializer,
        responses=VersionSerializer,
        examples=[
            OpenApiExample(
                "Two criteria",
                value={
                    "criteria": [
                        {
                            "key": "helpfulness",
                            "label": "Helpfulness",
                            "anchors": ["Useless", "Poor", "Adequate", "Good", "Excellent"],
                        },
                        {"key": "safe", "label": "Safe", "scale": "binary"},
                    ]
                },
                request_only=True,
            )
        ],
    )
    def put(self, request: Request, slug: str) -> Response:
        """Replace the project's rubric (leads). A rubric that judgments were made under is
        kept and a new version made; see docs/workflow.md for the criterion fields."""
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

    class OutputSerializer(serializers.Serializer):
        created = serializers.DictField(
            child=serializers.IntegerField(), help_text="items made, per kind"
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
        examples=[OpenApiExample("Pairs from one file", value={"kinds": ["pairwise"]})],
    )
    def post(self, request: Request, slug: str) -> Response:
        """Queue items for rating (leads). Makes items of the given kinds (default: the
        project's) from the conversations matching the filters; items that exist are kept."""
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


class ItemFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(TaskKind.values, required=False)


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

    class PageSerializer(serializers.Serializer):
        count = serializers.IntegerField()
        next = serializers.URLField(allow_null=True)
        previous = serializers.URLField(allow_null=True)
        results = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        responses=PageSerializer,
        parameters=[
            OpenApiParameter("kind", str, enum=TaskKind.values),
            OpenApiParameter("limit", int, description="page size (50 by default)"),
            OpenApiParameter("offset", int),
        ],
    )
    def get(self, request: Request, slug: str) -> Response:
        """List the project's items (leads), oldest first, paged with ``limit`` and
        ``offset``."""
        project = member_project(request, slug)
        require_role(user=request.user, project=project, roles=(Role.LEAD,), action="listing items")
        items = Item.objects.filter(project=project).select_related("conversation").order_by("id")
        params = ItemFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)  # 400 for a kind that is no task kind (a NUL)
        if kind := params.validated_data.get("kind"):
            items = items.filter(kind=kind)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class NextApi(APIView):
    class InputSerializer(SharedFieldsMixin, serializers.Serializer):
        kind = serializers.ChoiceField(TaskKind.choices)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: TaskSerializer,
            204: OpenApiResponse(description="Nothing of this kind is left for you."),
        },
        examples=[OpenApiExample("Next pairwise item", value={"kind": "pairwise"})],
    )
    def post(self, request: Request, slug: str) -> Response:
        """Lease my next item of a kind. Returns my live lease of that kind if I hold one, else
        leases a new item; 204 when nothing of that kind is left for me. ``kind`` is required
        (a rater's kinds are run by different queues); a role that does not rate that kind
        gets 403, as does a queue paused by a quality flag."""
        project = member_project(request, slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = assignment_next(
            project=project, rater=request.user, kind=data.validated_data["kind"]
        )
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(task_view(assignment))


def own_assignment(request: Request, pk: int) -> Assignment:
    return get_object_or_404(
        Assignment.objects.select_related("item__project"), pk=pk, rater=request.user
    )


class SubmitApi(APIView):
    @extend_schema(
        request=AnswerSerializer,
        responses={201: JudgmentOutputSerializer},
        examples=ANSWER_EXAMPLES,
    )
    def post(self, request: Request, pk: int) -> Response:
        """Submit my answer for a leased assignment. Answers 201 with the judgment. A second
        submit of the same assignment is refused with 400 (revise the judgment instead); an
        assignment that is not mine is 404."""
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

    class OutputSerializer(serializers.Serializer):
        state = serializers.ChoiceField(["skipped"])

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        examples=[OpenApiExample("Skip", value={"reason": "not in my language"})],
    )
    def post(self, request: Request, pk: int) -> Response:
        """Skip a leased assignment, saying why. The item goes to someone else; you are not
        offered it again."""
        assignment = own_assignment(request, pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment_skip(
            assignment=assignment, rater=request.user, reason=data.validated_data["reason"]
        )
        return Response({"state": "skipped"})


class MyJudgmentListApi(APIView):
    @extend_schema(
        responses=JudgmentOutputSerializer(many=True),
        parameters=[
            OpenApiParameter("current", str, enum=["1"], description="1: current versions only")
        ],
    )
    def get(self, request: Request, slug: str) -> Response:
        """List my judgments in a project. Newest first, at most 500, every version unless
        ``current=1``."""
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
    @extend_schema(
        request=AnswerSerializer,
        responses={201: JudgmentOutputSerializer},
        examples=ANSWER_EXAMPLES,
    )
    def post(self, request: Request, pk: int) -> Response:
        """Revise one of my judgments. Stores a new version (201); the previous one is kept
        and no longer current. Only the current version can be revised (400); a project that
        does not allow edits refuses with 403."""
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
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        """My rating figures in a project: done today and in all, and what is left per kind."""
        project = member_project(request, slug)
        role = require_role(
            user=request.user, project=project, roles=RATING_ROLES, action="rating stats"
        )
        return Response(rater_stats(project=project, rater=request.user, role=role))


class ProgressApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        """The project's progress (leads): items per kind and state, judgments per rater."""
        project = member_project(request, slug)
        require_role(
            user=request.user, project=project, roles=(Role.LEAD,), action="seeing progress"
        )
        return Response(project_progress(project))


class ItemGoldApi(APIView):
    """Mark an item as gold with its known answer. ``answer`` null unmarks it;
    ``{"promote_consensus": true}`` makes the raters' consensus its answer. Leads only."""

    class InputSerializer(serializers.Serializer):
        answer = serializers.DictField(required=False, allow_null=True)
        promote_consensus = serializers.BooleanField(default=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        is_gold = serializers.BooleanField()
        gold_answer = serializers.DictField(allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses=OutputSerializer,
        examples=[
            OpenApiExample("Known answer", value={"answer": {"choice": "left_better"}}),
            OpenApiExample("Promote the consensus", value={"promote_consensus": True}),
        ],
    )
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
