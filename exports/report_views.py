"""Web pages of the reports (KB correctness, model leaderboard), for leads and data consumers.

The pages and the API (``exports/report_api.py``) call the same builders in
``exports/reports/``; every table on a page is also served as JSON and CSV.
"""

from html import escape

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import SafeString, mark_safe

from conversations.models import Project
from conversations.services.access import require_role
from exports.reports import (
    DEFAULT_BOOT,
    REPORT_ROLES,
    KBFilters,
    boot_limit,
    criterion_table,
    kb_filter_choices,
    kb_report,
    leaderboard_report,
    rater_names_visible,
)
from ratings import charts


def _report_project(request: HttpRequest, slug: str) -> tuple[Project, str]:
    """The project (404 for non-members) and the reader's role (403 unless the user is a
    lead or a data consumer)."""
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    role = require_role(
        user=request.user, project=project, roles=REPORT_ROLES, action="seeing reports"
    )
    return project, role


# ---------------------------------------------------------------------------
# Forms
# ---------------------------------------------------------------------------


class KBFilterForm(forms.Form):
    date_from = forms.DateField(
        required=False, label="Conversations from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="to", widget=forms.DateInput(attrs={"type": "date"})
    )
    model = forms.ChoiceField(required=False, label="Bot / model version")
    topic = forms.ChoiceField(required=False, label="Topic")
    include_external = forms.BooleanField(required=False, label="Include imported judgments")

    def __init__(self, *args, choices: dict[str, list[str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "All")] + [(m, m) for m in choices["models"]]
        self.fields["topic"].choices = [("", "All")] + [(t, t) for t in choices["topics"]]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def filters(self) -> KBFilters:
        d = self.cleaned_data
        return KBFilters(
            date_from=d.get("date_from"),
            date_to=d.get("date_to"),
            model=d.get("model") or "",
            topic=d.get("topic") or "",
            include_external=bool(d.get("include_external")),
        )


class LeaderboardForm(forms.Form):
    include_external = forms.BooleanField(required=False, label="Include imported judgments")

    def __init__(self, *args, role: str, **kwargs):
        super().__init__(*args, **kwargs)
        limit = boot_limit(role)  # per role: replicates cost the web process CPU
        self.fields["n_boot"] = forms.IntegerField(
            required=False,
            min_value=1,
            max_value=limit,
            label="Bootstrap replicates",
            help_text=f"At most {limit}.",
            widget=forms.NumberInput(attrs={"placeholder": str(DEFAULT_BOOT)}),
        )


# ---------------------------------------------------------------------------
# Chart: values with interval whiskers (same conventions as ratings/charts.py)
# ---------------------------------------------------------------------------

ROW_H, LABEL_W = 26, 180


def interval_chart(
    rows: list[tuple[str, float | None, float | None, float | None]],
    *,
    title: str,
    x_range: tuple[float, float] | None = None,
    reference: float | None = None,
    digits: int = 1,
    x_title: str = "",
) -> SafeString:
    """One row per label: a dot at the value and a whisker from low to high (a forest plot).

    ``rows``: ``[(label, value, low, high)]``, drawn top to bottom; rows without a value are
    left out, a missing bound draws no whisker. ``reference`` draws a dashed vertical line
    (the mean rating). Labels are escaped.
    """
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return mark_safe(f'<p class="muted chart-empty">{escape(title)}: no data yet.</p>')
    ends = [v for r in rows for v in r[1:] if v is not None]
    if reference is not None:
        ends.append(reference)
    lo, hi = x_range if x_range else charts.axis_range(ends, None)
    span = (hi - lo) or 1.0
    width = charts.W
    height = charts.PAD_T + ROW_H * len(rows) + charts.PAD_B

    def x(v: float) -> float:
        return LABEL_W + (v - lo) / span * (width - LABEL_W - charts.PAD_R)

    bottom = height - charts.PAD_B
    parts = [
        f'<line x1="{LABEL_W}" y1="{bottom}" x2="{width - charts.PAD_R}" y2="{bottom}" class="axis"/>'
    ]
    for v in charts.nice_ticks(lo, hi):
        parts.append(
            f'<line x1="{x(v):.1f}" y1="{charts.PAD_T}" x2="{x(v):.1f}" y2="{bottom}" class="grid"/>'
        )
        parts.append(
            f'<text x="{x(v):.1f}" y="{bottom + 16}" text-anchor="middle" class="tick">{charts.fmt_tick(v)}</text>'
        )
    if x_title:
        parts.append(
            f'<text x="{(LABEL_W + width - charts.PAD_R) / 2:.0f}" y="{height - 8}" text-anchor="middle" class="axis-title">{escape(x_title)}</text>'
        )
    if reference is not None:
        parts.append(
            f'<line x1="{x(reference):.1f}" y1="{charts.PAD_T}" x2="{x(reference):.1f}" y2="{bottom}" stroke="#9aa3b2" stroke-dasharray="4 3" class="reference"/>'
        )
    color = charts.PALETTE[0]
    for i, (label, value, low, high) in enumerate(rows):
        cy = charts.PAD_T + ROW_H * i + ROW_H / 2
        tip = f"{label}: {value:.{digits}f}"
        if low is not None and high is not None:
            tip += f" [{low:.{digits}f}, {high:.{digits}f}]"
            parts.append(
                f'<line x1="{x(low):.1f}" y1="{cy:.1f}" x2="{x(high):.1f}" y2="{cy:.1f}" stroke="{color}" stroke-width="2" class="whisker"/>'
            )
            for end in (low, high):
                parts.append(
                    f'<line x1="{x(end):.1f}" y1="{cy - 5:.1f}" x2="{x(end):.1f}" y2="{cy + 5:.1f}" stroke="{color}" stroke-width="2"/>'
                )
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{cy + 4:.1f}" text-anchor="end" class="tick">{escape(label[:28])}</text>'
        )
        parts.append(
            f'<circle cx="{x(value):.1f}" cy="{cy:.1f}" r="4.5" fill="{color}" class="point"><title>{escape(tip)}</title></circle>'
        )
    svg = f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" class="chart interval-chart">{"".join(parts)}</svg>'
    return mark_safe(
        f'<figure class="chart-figure"><figcaption>{escape(title)}</figcaption>{svg}</figure>'
    )


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------

TOP_ARTICLES = 15


@login_required
def kb_report_page(request: HttpRequest, slug: str) -> HttpResponse:
    """KB correctness: shares with Wilson intervals per article and source, the weekly trend
    and the wrong or incomplete answers with the SMEs' corrections."""
    project, role = _report_project(request, slug)
    reveal = rater_names_visible(project=project, role=role)
    form = KBFilterForm(request.GET, choices=kb_filter_choices(project))
    context: dict = {"project": project, "form": form, "query": request.GET.urlencode()}
    if not form.is_valid():
        return render(request, "exports/kb_report.html", context, status=400)
    report = kb_report(project=project, filters=form.filters(), reveal_raters=reveal)
    series = [
        {
            "name": verdict,
            "points": [
                (
                    w["week"],
                    w[f"share_{verdict}"],
                    w[f"share_{verdict}_low"],
                    w[f"share_{verdict}_high"],
                )
                for w in report.weekly
                if w["judged"]
            ],
        }
        for verdict in ("correct", "incorrect", "incomplete")
    ]
    context["report"] = report
    context["charts"] = {
        "weekly": charts.line_chart(
            series,
            title="Weekly shares of judged answers (95% Wilson bands)",
            y_range=(0, 1),
            x_title="Week",
            y_title="Share of judged answers",
        ),
        "articles": interval_chart(
            [
                (
                    a["article_id"],
                    a["share_correct"],
                    a["share_correct_low"],
                    a["share_correct_high"],
                )
                for a in report.articles[:TOP_ARTICLES]
            ],
            title=f"Share correct, {TOP_ARTICLES} most-cited articles (95% Wilson intervals)",
            x_range=(0, 1),
            digits=2,
            x_title="Share of answers judged correct",
        ),
    }
    return render(request, "exports/kb_report.html", context)


@login_required
def leaderboard_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Model leaderboard: Bradley–Terry ratings with bootstrap intervals and CI ranks, the
    win/tie/loss matrix, the position bias and the rubric means per model."""
    project, role = _report_project(request, slug)
    form = LeaderboardForm(request.GET, role=role)
    context: dict = {"project": project, "form": form, "query": request.GET.urlencode()}
    if not form.is_valid():
        return render(request, "exports/leaderboard.html", context, status=400)
    board = leaderboard_report(
        project=project,
        include_external=bool(form.cleaned_data.get("include_external")),
        n_boot=form.cleaned_data.get("n_boot") or DEFAULT_BOOT,
    )
    rated = [r for r in board.rows if r["rating"] is not None]
    order = [r["model"] for r in board.rows if r["model"] in board.matrix["models"]]
    index = {m: k for k, m in enumerate(board.matrix["models"])}
    matrix_rows = [
        {
            "model": a,
            "cells": [
                {
                    "self": a == b,
                    "wins": board.matrix["wins"][index[a]][index[b]],
                    "ties": board.matrix["ties"][index[a]][index[b]],
                    "losses": board.matrix["losses"][index[a]][index[b]],
                }
                for b in order
            ],
        }
        for a in order
    ]
    context.update(
        board=board,
        order=order,
        matrix_rows=matrix_rows,
        criteria=criterion_table(board),
        confidence_pct=round(board.confidence * 100),
        min_battles=charts.MIN_BATTLES,
        charts={
            "ratings": interval_chart(
                [(r["model"], r["rating"], r["lower"], r["upper"]) for r in rated],
                title=f"Bradley–Terry rating (Elo scale) with {round(board.confidence * 100)}% "
                "bootstrap intervals",
                reference=1000.0,
                digits=0,
                x_title="Rating (Elo scale; the dashed line is the mean, 1000)",
            ),
            "wins": charts.heatmap(
                order,
                [[c["wins"] for c in row["cells"]] for row in matrix_rows],
                title="Wins of the row model against the column model",
                row_title="Model",
                col_title="Against",
                scale_label="wins",
            ),
        },
    )
    return render(request, "exports/leaderboard.html", context)
