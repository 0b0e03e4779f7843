"""Report builders: KB correctness (the SMEs' verdicts) and the model leaderboard.

Each builder reads one project with QuerySets, computes with numpy/scipy and returns plain
data (dataclasses holding lists of flat dicts) that the HTML pages, the JSON API and the CSV
files share, so the three never disagree. Nothing here writes to the database or knows
about HTTP; access checks happen before a builder is called. See ``docs/reports.md``.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Avg, Count, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone
from scipy.stats import norm

from conversations.models import KBReference, Message, MessageRole, Project, Role
from exports import leaderboard_stats as lbs
from exports.pseudonyms import rater_labels
from ratings.models import Criterion, Item, Judgment, Scale, Score, TaskKind, Verdict

REPORT_ROLES: tuple[str, ...] = (Role.LEAD, Role.CONSUMER)

DECISIVE = (Verdict.CORRECT.value, Verdict.INCORRECT.value, Verdict.INCOMPLETE.value)
DISPUTED = "disputed"
CANNOT_JUDGE = Verdict.CANNOT_JUDGE.value
KB_PROBLEMS = ("wrong", "outdated", "missing")
NUMERIC_SCALES = (Scale.LIKERT.value, Scale.BINARY.value)


def rater_names_visible(*, project: Project, role: str | None) -> bool:
    """Whether a report reader sees rater user names: leads always (they see every judgment
    anyway), data consumers only when the project allows it; everyone else gets pseudonyms."""
    return role == Role.LEAD or bool(project.show_rater_identities)


# ---------------------------------------------------------------------------
# Small statistics
# ---------------------------------------------------------------------------


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion ``k / n``; None when ``n == 0``.

    Guarantees ``0 <= low <= k/n <= high <= 1``; unlike the normal approximation it stays
    inside [0, 1] and is not degenerate at ``k = 0`` or ``k = n``.
    """
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError("k must be between 0 and n")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def kb_consensus(verdicts: Iterable[str]) -> str | None:
    """One answer's verdict from its current judgments.

    ``cannot_judge`` votes are abstentions: the verdict is the most common of the other
    verdicts; a tie at the top gives ``"disputed"``; when every vote abstains it is
    ``"cannot_judge"``; with no votes at all it is None (not judged yet).
    """
    verdicts = [v for v in verdicts if v]
    if not verdicts:
        return None
    votes = Counter(v for v in verdicts if v != CANNOT_JUDGE)
    if not votes:
        return CANNOT_JUDGE
    (top, n), *rest = votes.most_common()
    return DISPUTED if rest and rest[0][1] == n else top


def _shares(counts: Counter) -> dict[str, Any]:
    """Counts, shares and Wilson intervals of one group of answers (flat, CSV-ready).

    ``judged`` (the denominator) is the answers whose verdict is correct, incorrect,
    incomplete or disputed; cannot-judge answers are counted but left out of the shares.
    """
    judged = sum(counts[v] for v in (*DECISIVE, DISPUTED))
    row: dict[str, Any] = {"judged": judged}
    for verdict in (*DECISIVE, DISPUTED, CANNOT_JUDGE):
        row[verdict] = counts[verdict]
    for verdict in DECISIVE:
        ci = wilson_interval(counts[verdict], judged)
        row[f"share_{verdict}"] = counts[verdict] / judged if judged else None
        row[f"share_{verdict}_low"] = ci[0] if ci else None
        row[f"share_{verdict}_high"] = ci[1] if ci else None
    row["share_disputed"] = counts[DISPUTED] / judged if judged else None
    return row


# ---------------------------------------------------------------------------
# KB correctness
# ---------------------------------------------------------------------------


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
    carry the same count and share columns (see :func:`_shares`); ``answers`` lists the
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
        qs = qs.alias(topic_text=KeyTextTransform("topic", "conversation__metadata")).filter(
            topic_text=filters.topic
        )
    return qs


def kb_filter_choices(project: Project) -> dict[str, list[str]]:
    """The models and topics that occur among the project's KB answers (for filter menus)."""
    items = Item.objects.filter(project=project, kind=TaskKind.KB_VERIFY)
    models = items.exclude(response__model="").values_list("response__model", flat=True)
    topics = (
        items.annotate(topic_text=KeyTextTransform("topic", "conversation__metadata"))
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
        .annotate(topic_text=KeyTextTransform("topic", "conversation__metadata"))
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
            **_shares(article_counts[aid]),
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
            **_shares(source_counts[(fmt, name)]),
        }
        for fmt, name in sorted(source_answers)
    ]
    weekly_rows = [{"week": week, **_shares(weekly_counts[week])} for week in sorted(weekly_counts)]
    total_row = {"answers": len(by_id), **_shares(totals)}
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


# ---------------------------------------------------------------------------
# Model leaderboard
# ---------------------------------------------------------------------------


@dataclass
class Battles:
    """Pairwise judgments as leaderboard battles, and what was left out and why."""

    battles: list[tuple[str, str, str, bool | None]] = field(default_factory=list)
    skipped_same_model: int = 0
    skipped_no_model: int = 0


def pairwise_battles(*, project: Project, include_external: bool = False) -> Battles:
    """Current pairwise judgments as ``(model_a, model_b, outcome, left_is_a)`` battles.

    The models are the ``Message.model`` of the item's response A and response B; outcome
    ``"A"`` for a negative preference, ``"B"`` for a positive one, ``"tie"`` for 0 and for
    every both-bad vote. Judgments on items whose two responses share a model, or where
    either has none, are skipped and counted. External judgments only with
    ``include_external``.
    """
    qs = Judgment.objects.filter(
        item__project=project,
        item__kind=TaskKind.PAIRWISE,
        is_current=True,
        preference__isnull=False,
    )
    if not include_external:
        qs = qs.filter(is_external=False)
    out = Battles()
    for model_a, model_b, preference, both_bad, left_is_a in qs.order_by("id").values_list(
        "item__response__model", "item__response_b__model", "preference", "both_bad", "left_is_a"
    ):
        if not model_a or not model_b:
            out.skipped_no_model += 1
            continue
        if model_a == model_b:
            out.skipped_same_model += 1
            continue
        outcome = "tie" if both_bad or preference == 0 else ("A" if preference < 0 else "B")
        out.battles.append((model_a, model_b, outcome, left_is_a))
    return out


def criterion_means(*, project: Project, include_external: bool = False) -> list[dict[str, Any]]:
    """Mean rubric score per criterion and model, from current scoring judgments.

    Only numeric scales count (Likert points; binary as 1 = yes, 0 = no, so the mean is the
    share of yes). The model is the scored response's ``Message.model``; responses without
    a model are left out. Rubric versions are pooled by criterion key and scale; the label
    is the newest version's. Rows are sorted by criterion position, then model.
    """
    qs = Score.objects.filter(
        judgment__item__project=project,
        judgment__item__kind=TaskKind.SCORE,
        judgment__is_current=True,
        value__isnull=False,
        criterion__scale__in=NUMERIC_SCALES,
    ).exclude(judgment__item__response__model="")
    if not include_external:
        qs = qs.filter(judgment__is_external=False)
    groups = (
        qs.values("criterion__key", "criterion__scale", "judgment__item__response__model")
        .annotate(mean=Avg("value"), n=Count("id"))
        .order_by()
    )
    meta: dict[tuple[str, str], dict] = {}
    for c in Criterion.objects.filter(rubric__project=project).order_by(
        "rubric__version", "position"
    ):
        meta[(c.key, c.scale)] = {"label": c.label, "points": c.points, "position": c.position}
    rows = []
    for g in groups:
        key = (g["criterion__key"], g["criterion__scale"])
        info = meta.get(key, {"label": key[0], "points": None, "position": 0})
        rows.append(
            {
                "criterion": key[0],
                "label": info["label"],
                "scale": key[1],
                "points": info["points"],
                "model": g["judgment__item__response__model"],
                "mean": float(g["mean"]),
                "n": g["n"],
                "_position": info["position"],
            }
        )
    rows.sort(key=lambda r: (r["_position"], r["criterion"], r["model"]))
    for r in rows:
        del r["_position"]
    return rows


BT_CACHE_SECONDS = 24 * 3600


def _bt_summary(
    counts: lbs.PairCounts, *, n_boot: int, seed: int, confidence: float
) -> dict[str, Any]:
    """Bootstrap the Bradley–Terry fit and keep what the report shows (plain, picklable).

    Cached under a digest of the aggregated counts and the parameters: the same data and
    parameters always give the same result (the bootstrap is seeded), so a hit is exact and
    any new or revised judgment changes the key.
    """
    digest = hashlib.sha256(
        repr(
            (
                [str(m) for m in counts.models],
                counts.i.tolist(),
                counts.j.tolist(),
                counts.side.tolist(),
                counts.wins_i.tolist(),
                counts.wins_j.tolist(),
                counts.ties.tolist(),
                n_boot,
                seed,
                confidence,
            )
        ).encode()
    ).hexdigest()

    def compute() -> dict[str, Any]:
        boot = lbs.bootstrap(counts, n_boot=n_boot, seed=seed, confidence=confidence)
        point = boot.point
        out: dict[str, Any] = {
            "status": boot.status,
            "message": point.message,
            "components": [[str(m) for m in c] for c in point.components],
            "n_used": boot.n_used,
            "table": [{**row, "model": str(row["model"])} for row in boot.table()],
            "bias": None,
        }
        if boot.ok:
            fitted = point.position_bias_fitted
            ci = boot.position_bias_ci
            out["bias"] = {
                "fitted": fitted,
                "elo": point.position_bias_elo if fitted else None,
                "low": ci[0] if ci else None,
                "high": ci[1] if ci else None,
                "left_win_prob": point.position_bias_left_win_prob if fitted else None,
            }
        elif point.ok:
            out["message"] = "every bootstrap replicate was disconnected: collect more battles"
        return out

    return cache.get_or_set(f"reports:bt:{digest}", compute, BT_CACHE_SECONDS)


@dataclass
class Leaderboard:
    """The model leaderboard of one project.

    ``rows`` has one entry per model (rated models by CI rank and rating, then models that
    only have rubric scores or could not be rated): ``model``, ``rating``, ``lower``,
    ``upper``, ``rank`` (None unless ``status == "ok"``), ``wins``, ``ties``, ``losses``,
    ``battles``. ``matrix`` holds the head-to-head ``wins``/``ties``/``losses`` tables
    (row model against column model) over ``matrix["models"]``. With ``"insufficient
    data"``, ``components`` lists the groups of models that never met each other.
    """

    status: str
    message: str
    rows: list[dict[str, Any]]
    matrix: dict[str, Any]
    components: list[list[str]]
    position_bias: dict[str, Any]
    criteria: list[dict[str, Any]]
    n_battles: int
    skipped_same_model: int
    skipped_no_model: int
    n_boot: int
    n_boot_used: int
    seed: int
    confidence: float
    include_external: bool


def leaderboard_report(
    *,
    project: Project,
    include_external: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Leaderboard:
    """Build the leaderboard: Bradley–Terry ratings (Elo scale, mean 1000) with percentile
    bootstrap intervals and CI-based ranks, the position-bias term, the win/tie/loss matrix
    and the per-criterion rubric means.

    Deterministic for a given ``seed``. Reads only; the statistics are those of
    :mod:`exports.leaderboard_stats` (see ``docs/leaderboard.md``). Raises ``ValueError``
    for ``n_boot < 1`` or a confidence outside (0, 1).
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    data = pairwise_battles(project=project, include_external=include_external)
    criteria = criterion_means(project=project, include_external=include_external)
    per_model: dict[str, dict[str, Any]] = {}
    matrix: dict[str, Any] = {"models": [], "wins": [], "ties": [], "losses": []}
    status, message, components = lbs.STATUS_INSUFFICIENT, "no pairwise battles yet", []
    bias: dict[str, Any] = {
        "fitted": False,
        "elo": None,
        "low": None,
        "high": None,
        "left_win_prob": None,
    }
    n_used = 0

    if data.battles:
        counts = lbs.outcome_counts(data.battles)
        wtl = lbs.win_tie_loss_matrix(counts)
        models = [str(m) for m in wtl.models]
        matrix = {
            "models": models,
            "wins": wtl.wins.tolist(),
            "ties": wtl.ties.tolist(),
            "losses": wtl.losses.tolist(),
        }
        for k, model in enumerate(models):
            per_model[model] = {
                "wins": int(wtl.wins[k].sum()),
                "ties": int(wtl.ties[k].sum()),
                "losses": int(wtl.losses[k].sum()),
                "battles": int(wtl.games[k].sum()),
            }
        fit = _bt_summary(counts, n_boot=n_boot, seed=seed, confidence=confidence)
        status, message, components = fit["status"], fit["message"], fit["components"]
        n_used = fit["n_used"]
        for row in fit["table"]:
            per_model[row["model"]].update(
                rating=row["rating"], lower=row["lower"], upper=row["upper"], rank=row["rank"]
            )
        bias = fit["bias"] or bias

    for r in criteria:
        per_model.setdefault(r["model"], {"wins": 0, "ties": 0, "losses": 0, "battles": 0})
    rows = [
        {
            "model": model,
            "rating": v.get("rating"),
            "lower": v.get("lower"),
            "upper": v.get("upper"),
            "rank": v.get("rank"),
            "wins": v["wins"],
            "ties": v["ties"],
            "losses": v["losses"],
            "battles": v["battles"],
        }
        for model, v in per_model.items()
    ]
    rows.sort(
        key=lambda r: (
            r["rank"] is None,
            r["rank"] or 0,
            -(r["rating"] if r["rating"] is not None else -math.inf),
            r["model"],
        )
    )
    return Leaderboard(
        status=status,
        message=message,
        rows=rows,
        matrix=matrix,
        components=components,
        position_bias=bias,
        criteria=criteria,
        n_battles=len(data.battles),
        skipped_same_model=data.skipped_same_model,
        skipped_no_model=data.skipped_no_model,
        n_boot=n_boot,
        n_boot_used=n_used,
        seed=seed,
        confidence=confidence,
        include_external=include_external,
    )


def leaderboard_csv_rows(board: Leaderboard) -> list[dict[str, Any]]:
    """One flat row per model: the leaderboard columns, then ``mean_<criterion>`` and
    ``n_<criterion>`` for every rubric criterion with numeric scores."""
    keys = list(dict.fromkeys(r["criterion"] for r in board.criteria))
    means = {(r["model"], r["criterion"]): r for r in board.criteria}
    out = []
    for row in board.rows:
        flat = dict(row)
        for key in keys:
            m = means.get((row["model"], key))
            flat[f"mean_{key}"] = m["mean"] if m else None
            flat[f"n_{key}"] = m["n"] if m else 0
        out.append(flat)
    return out


def criterion_table(board: Leaderboard) -> dict[str, Any]:
    """The rubric means as a criterion × model table for display:
    ``{"models": [...], "rows": [{"criterion", "label", "scale", "points", "cells": [...]}]}``
    with ``cells[k] = {"mean", "n"}`` (None where the model has no score)."""
    models = sorted({r["model"] for r in board.criteria})
    order = [m["model"] for m in board.rows if m["model"] in models]
    table: dict[str, dict] = {}
    for r in board.criteria:
        entry = table.setdefault(
            r["criterion"],
            {"criterion": r["criterion"], "label": r["label"], "scale": r["scale"]}
            | {"points": r["points"], "by_model": {}},
        )
        entry["by_model"][r["model"]] = {"mean": r["mean"], "n": r["n"]}
    rows = [
        {
            **{k: v for k, v in e.items() if k != "by_model"},
            "cells": [e["by_model"].get(m) for m in order],
        }
        for e in table.values()
    ]
    return {"models": order, "rows": rows}
