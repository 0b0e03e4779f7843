"""KB correctness: the SMEs' verdicts per article, source and week."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from conversations.models import KBReference, Message, MessageRole, Project
from exports.pseudonyms import rater_labels
from exports.reports.common import KB_PROBLEMS, kb_consensus, verdict_shares
from ratings.models import Item, Judgment, TaskKind, Verdict


@dataclass(frozen=True)
class KBFilters:
    """What the KB report covers.

    ``date_from`` / ``date_to`` (inclusive calendar days in the site's time zone) select
    answers by when the conversation happened (``Conversation.occurred_at``), so answers
    without that date drop out once either bound is set. ``model`` is the answer's
    ``Message.model``; ``topic`` the conversation's ``metadata["topic"]`` (compared as text).
    Imported (external) judgments count only with ``include_external``.
    """

    date_from: date | None = None
    date_to: date | None = None
    model: str = ""
    topic: str = ""
    include_external: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from,
            "date_to": self.date_to,
            "model": self.model,
            "topic": self.topic,
            "include_external": self.include_external,
        }


@dataclass
class KBReport:
    """The KB-correctness report of one project under one set of filters.

    ``totals``, each row of ``articles`` (most cited first), ``sources`` and ``weekly``
    carry the same count and share columns (see :func:`verdict_shares`); ``answers`` lists the
    answers whose verdict is incorrect or incomplete, those citing the most-cited articles
    first, with the SMEs' corrections and missing facts.
    """

    filters: KBFilters
    totals: dict[str, Any]
    articles: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    weekly: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    undated: int = 0
    unnamed_missing: int = 0


def _topic_text() -> Cast:
    """The conversation's ``metadata["topic"]`` as text, compared as text on every database.

    A bare ``KeyTextTransform`` keeps the JSON key lookups, so on SQLite ``= 'billing'``
    became ``= JSON_EXTRACT('billing', '$')`` and failed with "malformed JSON"; the cast
    makes the comparison a plain text one.
    """
    return Cast(KeyTextTransform("topic", "conversation__metadata"), output_field=TextField())


def kb_items(project: Project, filters: KBFilters) -> QuerySet[Item]:
    """The project's KB-verification items that pass the filters."""
    qs = Item.objects.filter(project=project, kind=TaskKind.KB_VERIFY)
    if filters.date_from:
        qs = qs.filter(conversation__occurred_at__date__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(conversation__occurred_at__date__lte=filters.date_to)
    if filters.model:
        qs = qs.filter(response__model=filters.model)
    if filters.topic:
        qs = qs.alias(topic_text=_topic_text()).filter(topic_text=filters.topic)
    return qs


def kb_filter_choices(project: Project) -> dict[str, list[str]]:
    """The models and topics that occur among the project's KB answers (for filter menus)."""
    items = Item.objects.filter(project=project, kind=TaskKind.KB_VERIFY)
    models = items.exclude(response__model="").values_list("response__model", flat=True)
    topics = (
        items.annotate(topic_text=_topic_text())
        .exclude(topic_text__isnull=True)
        .exclude(topic_text="")
        .values_list("topic_text", flat=True)
    )
    return {"models": sorted(set(models)), "topics": sorted(set(topics))}


def _week_of(moment: datetime) -> date:
    day = timezone.localtime(moment).date()
    return day - timedelta(days=day.weekday())


def kb_report(*, project: Project, filters: KBFilters, reveal_raters: bool) -> KBReport:
    """Build the KB-correctness report.

    Reads only: the filtered KB items, the knowledge-base references of their answers, the
    current judgments on them (internal only unless ``filters.include_external``) and, for
    the listed answers, the question before each. Per answer the verdict is
    :func:`kb_consensus` of its current judgments; an answer counts once for every distinct
    article it cites. ``citations`` of an article is the number of answers in the report
    that cite it (judged or not). Article problems are counted per judgment that flagged
    them. Raters appear under :func:`exports.pseudonyms.rater_labels` with
    ``reveal=reveal_raters``.
    """
    items = list(
        kb_items(project, filters)
        .annotate(topic_text=_topic_text())
        .select_related("response", "conversation")
        .order_by("id")
    )
    by_id = {item.pk: item for item in items}

    refs: dict[int, list[dict]] = defaultdict(list)
    titles: dict[str, Counter] = defaultdict(Counter)
    versions: dict[str, set] = defaultdict(set)
    urls: dict[str, str] = {}
    for ref in (
        KBReference.objects.filter(message_id__in=[i.response_id for i in items])
        .order_by("message_id", "position", "id")
        .values("message_id", "article_id", "title", "version", "url")
    ):
        aid = ref["article_id"]
        if aid not in {r["article_id"] for r in refs[ref["message_id"]]}:
            refs[ref["message_id"]].append(ref)
        if ref["title"]:
            titles[aid][ref["title"]] += 1
        if ref["version"]:
            versions[aid].add(ref["version"])
        if ref["url"]:
            urls.setdefault(aid, ref["url"])

    judgments_qs = Judgment.objects.filter(item_id__in=list(by_id), is_current=True)
    if not filters.include_external:
        judgments_qs = judgments_qs.filter(is_external=False)
    judgments: dict[int, list[dict]] = defaultdict(list)
    for j in judgments_qs.order_by("item_id", "created_at", "id").values(
        "item_id",
        "rater_id",
        "verdict",
        "corrected_answer",
        "missing_fact",
        "kb_issues",
        "created_at",
    ):
        judgments[j["item_id"]].append(j)

    verdict_of = {pk: kb_consensus(j["verdict"] for j in judgments.get(pk, [])) for pk in by_id}
    articles_of = {
        pk: [r["article_id"] for r in refs.get(by_id[pk].response_id, [])] for pk in by_id
    }

    # Counters per article, source and week; an unjudged answer still counts as a citation.
    article_counts: dict[str, Counter] = defaultdict(Counter)
    citations: Counter = Counter()
    flags: dict[str, Counter] = defaultdict(Counter)
    unnamed_missing = 0
    source_counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    source_answers: Counter = Counter()
    weekly_counts: dict[date, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    undated = 0
    for pk, item in by_id.items():
        verdict = verdict_of[pk]
        source = (item.conversation.source_format, item.conversation.source_name)
        source_answers[source] += 1
        for aid in articles_of[pk]:
            citations[aid] += 1
            if verdict:
                article_counts[aid][verdict] += 1
        for j in judgments.get(pk, []):
            seen = set()
            for issue in j["kb_issues"] or []:
                key = (str(issue.get("article_id") or "").strip(), issue.get("problem"))
                if key in seen or key[1] not in KB_PROBLEMS:
                    continue
                seen.add(key)
                if key[0]:
                    flags[key[0]][key[1]] += 1
                else:
                    unnamed_missing += 1
        if verdict is None:
            continue
        totals[verdict] += 1
        source_counts[source][verdict] += 1
        occurred = item.conversation.occurred_at
        if occurred is None:
            undated += 1
        else:
            weekly_counts[_week_of(occurred)][verdict] += 1

    article_rows = []
    for aid in set(citations) | set(flags):
        row = {
            "article_id": aid,
            "title": titles[aid].most_common(1)[0][0] if titles[aid] else "",
            "versions": ", ".join(sorted(versions[aid])),
            "url": urls.get(aid, ""),
            "citations": citations[aid],
            **verdict_shares(article_counts[aid]),
        }
        for problem in KB_PROBLEMS:
            row[f"flagged_{problem}"] = flags[aid][problem]
        article_rows.append(row)
    article_rows.sort(key=lambda r: (-r["citations"], -r["judged"], r["article_id"]))

    source_rows = [
        {
            "source_format": fmt,
            "source_name": name,
            "answers": source_answers[(fmt, name)],
            **verdict_shares(source_counts[(fmt, name)]),
        }
        for fmt, name in sorted(source_answers)
    ]
    weekly_rows = [
        {"week": week, **verdict_shares(weekly_counts[week])} for week in sorted(weekly_counts)
    ]
    total_row = {"answers": len(by_id), **verdict_shares(totals)}
    for problem in KB_PROBLEMS:
        total_row[f"flagged_{problem}"] = sum(f[problem] for f in flags.values())
    total_row["flagged_missing"] += unnamed_missing

    answers = _kb_answer_rows(
        project=project,
        items=[
            by_id[pk] for pk in by_id if verdict_of[pk] in (Verdict.INCORRECT, Verdict.INCOMPLETE)
        ],
        verdict_of=verdict_of,
        articles_of=articles_of,
        citations=citations,
        judgments=judgments,
        reveal_raters=reveal_raters,
    )
    return KBReport(
        filters=filters,
        totals=total_row,
        articles=article_rows,
        sources=source_rows,
        weekly=weekly_rows,
        answers=answers,
        undated=undated,
        unnamed_missing=unnamed_missing,
    )


def _kb_answer_rows(
    *,
    project: Project,
    items: list[Item],
    verdict_of: dict[int, str | None],
    articles_of: dict[int, list[str]],
    citations: Counter,
    judgments: dict[int, list[dict]],
    reveal_raters: bool,
) -> list[dict[str, Any]]:
    """The wrong and incomplete answers, with the question, corrections and flagged issues."""
    if not items:
        return []
    questions: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for m in (
        Message.objects.main_line()
        .filter(conversation_id__in={i.conversation_id for i in items}, role=MessageRole.USER)
        .values("conversation_id", "position", "content")
    ):
        questions[m["conversation_id"]].append((m["position"], m["content"]))
    rater_ids = {j["rater_id"] for i in items for j in judgments.get(i.pk, [])}
    labels = rater_labels(project=project, user_ids=rater_ids, reveal=reveal_raters)

    rows = []
    for item in items:
        before = [q for q in questions[item.conversation_id] if q[0] < item.response.position]
        own = judgments.get(item.pk, [])
        votes = Counter(j["verdict"] for j in own if j["verdict"])
        articles = articles_of[item.pk]
        rows.append(
            {
                "item_id": item.pk,
                "conversation": item.conversation.external_id,
                "source_format": item.conversation.source_format,
                "source_name": item.conversation.source_name,
                "occurred_at": item.conversation.occurred_at,
                "model": item.response.model,
                "topic": item.topic_text or "",
                "articles": articles,
                "citations": max((citations[a] for a in articles), default=0),
                "verdict": verdict_of[item.pk],
                "votes": dict(votes.most_common()),
                "question": max(before)[1] if before else "",
                "answer": item.response.content,
                "corrections": [
                    {
                        "rater": labels.get(j["rater_id"], ""),
                        "verdict": j["verdict"],
                        "corrected_answer": j["corrected_answer"],
                        "missing_fact": j["missing_fact"],
                        "judged_at": j["created_at"],
                    }
                    for j in own
                    if j["corrected_answer"] or j["missing_fact"]
                ],
                "kb_issues": [
                    {
                        "rater": labels.get(j["rater_id"], ""),
                        "article_id": issue.get("article_id") or "",
                        "problem": issue.get("problem"),
                    }
                    for j in own
                    for issue in j["kb_issues"] or []
                ],
            }
        )
    rows.sort(key=lambda r: (-r["citations"], r["articles"][:1], r["item_id"]))
    return rows
