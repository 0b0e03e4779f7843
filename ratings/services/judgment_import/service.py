"""The two entry points: a JSONL file of judgments, and the sources' own rankings."""

import json
from itertools import combinations
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from conversations.importers.readers import iter_json_lines, open_stream
from conversations.models import Message, MessageRole, Project, Role
from conversations.services.access import require_role
from ratings.models import TaskKind
from ratings.services.judgment_import.importer import _Importer
from ratings.services.judgment_import.records import (
    DISPLAY_NAMES,
    JudgmentImportSummary,
    ProgressCallback,
    _Record,
    _Ref,
)


def _lock(project: Project, user: AbstractBaseUser | None) -> None:
    if user is not None:
        require_role(user=user, project=project, roles=(Role.LEAD,), action="importing judgments")
    # one judgment import per project at a time; NO KEY UPDATE leaves inserts of rows that
    # refer to the project (items, judgments by raters) unblocked
    Project.objects.select_for_update(no_key=True).only("pk").get(pk=project.pk)


def judgment_import(
    *,
    project: Project,
    stream: BinaryIO,
    source_name: str,
    user: AbstractBaseUser | None = None,
    skip_invalid: bool = False,
    rejects: BinaryIO | None = None,
    progress: ProgressCallback | None = None,
    batch_size: int | None = None,
    count_for_quality: bool = False,
) -> JudgmentImportSummary:
    """Import a JSONL file (plain or gzip) of judgments made elsewhere into ``project``.

    ``count_for_quality``: the raters are the team's own, so the judgments count for
    agreement, rater quality, gold accuracy and drift like judgments made here (still
    external, with their source), and a rater may be named by a project member's user name.
    Off: they are for rankings only. A judgment imported before keeps the choice it was
    imported with (a second import of it is a duplicate).

    See the module docstring for the guarantees. ``user`` (None from the command line) must be
    a lead of the project: PermissionDenied otherwise. Raises ``JudgmentImportFailed``
    (nothing written) when a record is invalid and ``skip_invalid`` is off, or when the file
    holds no record.
    """
    summary = JudgmentImportSummary(source=source_name)
    data, counter, _ = open_stream(stream)
    with transaction.atomic():
        _lock(project, user)
        importer = _Importer(
            project=project,
            summary=summary,
            skip_invalid=skip_invalid,
            rejects=rejects,
            batch_size=batch_size or settings.IMPORT_BATCH_SIZE,
            count_for_quality=count_for_quality,
        )
        records = iter_json_lines(data, max_bytes=settings.IMPORT_MAX_RECORD_BYTES)
        for n, item in enumerate(records, 1):
            importer.feed(item)
            if progress is not None and n % 1000 == 0:
                summary.bytes_read = counter.count
                progress(summary)
        summary.bytes_read = counter.count
        importer.finish()
    if progress is not None:
        progress(summary)
    return summary


def source_rank_rater_name(source_format: str) -> str:
    return f"source:{source_format}"


def source_ranks_import(
    *, project: Project, user: AbstractBaseUser | None = None, batch_size: int | None = None
) -> JudgmentImportSummary:
    """Turn the sources' own rankings of candidates into external pairwise judgments.

    For every position whose candidates carry a source rank (OpenAssistant trees, HH-RLHF
    chosen / rejected), each pair of ranked candidates gets one judgment: the better (lower)
    rank wins with strength 1 (equal ranks: a tie), by the external rater ``source:<format>``,
    made at the conversation's ``occurred_at`` (else its ``created_at``). Same guarantees as
    ``judgment_import``; running it again adds nothing. Leads only (``user`` None: the command
    line); ValidationError when the project does not run pairwise items.
    """
    summary = JudgmentImportSummary(source="source ranks")
    if not project.has_pairwise:
        raise ValidationError({"project": "this project does not run pairwise items"})
    with transaction.atomic():
        _lock(project, user)
        importer = _Importer(
            project=project,
            summary=summary,
            skip_invalid=False,
            rejects=None,
            batch_size=batch_size or settings.IMPORT_BATCH_SIZE,
        )
        ranked = (
            Message.objects.filter(
                conversation__project=project,
                role=MessageRole.ASSISTANT,
                source_rank__isnull=False,
            )
            .order_by("conversation_id", "position", "id")
            .values_list(
                "id",
                "conversation_id",
                "position",
                "source_rank",
                "conversation__external_id",
                "conversation__source_format",
                "conversation__occurred_at",
                "conversation__created_at",
            )
        )
        group: list[tuple] = []

        def close_group() -> None:
            for a, b in combinations(group, 2):
                summary.records_read += 1
                conv_id, fmt = a[4], a[5]
                signed = (a[3] > b[3]) - (a[3] < b[3])  # the lower rank wins
                importer.add(
                    _Record(
                        line=summary.records_read,
                        raw=json.dumps(
                            {
                                "conversation_id": conv_id,
                                "pair": [a[0], b[0]],
                                "ranks": [a[3], b[3]],
                            }
                        ),
                        label="pair",
                        kind=TaskKind.PAIRWISE,
                        conversation_id=conv_id,
                        refs=(_Ref("response_a_id", pk=a[0]), _Ref("response_b_id", pk=b[0])),
                        rater=source_rank_rater_name(fmt),
                        created_at=a[6] or a[7],
                        answer={"choice": DISPLAY_NAMES[signed]},
                        external_id=f"source-rank:{a[0]}:{b[0]}",
                        source=fmt,
                    )
                )

        for row in ranked.iterator(chunk_size=5000):
            if group and (group[0][1], group[0][2]) != (row[1], row[2]):
                close_group()
                group = []
            group.append(row)
        close_group()
        importer.finish(empty_is_error=False)
    return summary
