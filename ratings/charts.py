"""Small server-rendered SVG charts: no JavaScript, no build step, escaped labels.

Each function returns a complete ``<svg>`` element as safe HTML. The data behind every chart
is also served by the API and as CSV (``ratings/api_quality.py``).
"""

import math
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 240, 58, 16, 14, 50
# Below this many battles a leaderboard model's rating carries "too few battles" (its interval
# is too wide for the rank to mean much; docs/reports.md).
MIN_BATTLES = 10
LABEL_MAX = 28  # longer matrix labels are cut (the full name is in the tooltip)
PALETTE = ["#2457c5", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207"]


def _x_scale(xs: list[float]):
    lo, hi = min(xs), max(xs)
    span = (hi - lo) or 1.0
    return lambda x: PAD_L + (x - lo) / span * (W - PAD_L - PAD_R)


def _y_scale(lo: float, hi: float):
    span = (hi - lo) or 1.0
    return lambda y: PAD_T + (1 - (y - lo) / span) * (H - PAD_T - PAD_B)


def nice_ticks(lo: float, hi: float, *, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi],
    all inside it: the axis is then drawn from the first tick to the last."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def axis_range(values: list[float], bounds: tuple[float, float] | None) -> tuple[float, float]:
    """The y range to draw: the data padded by a tenth, widened to round ticks, and never
    beyond the metric's own ``bounds`` (an agreement is not drawn above 1)."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or 0.1
    lo, hi = lo - pad, hi + pad
    if bounds:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    step_ticks = nice_ticks(lo, hi)
    step = step_ticks[1] - step_ticks[0] if len(step_ticks) > 1 else 1.0
    lo = round(math.floor(lo / step + 1e-9) * step, 10)
    hi = round(math.ceil(hi / step - 1e-9) * step, 10)
    if bounds:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return lo, hi


def fmt_tick(v: float) -> str:
    return f"{v:g}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"


def _axes(
    y_lo: float,
    y_hi: float,
    y,
    x_labels: list[tuple[float, str, str]],
    *,
    x_title: str = "",
    y_title: str = "",
) -> list[str]:
    parts = [
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" class="axis"/>'
    ]
    for v in nice_ticks(y_lo, y_hi):
        parts.append(
            f'<line x1="{PAD_L}" y1="{y(v):.1f}" x2="{W - PAD_R}" y2="{y(v):.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">{fmt_tick(v)}</text>'
        )
    for x, label, anchor in x_labels:
        parts.append(
            f'<text x="{x:.1f}" y="{H - PAD_B + 16}" text-anchor="{anchor}" class="tick">{escape(label)}</text>'
        )
    if x_title:
        parts.append(
            f'<text x="{(PAD_L + W - PAD_R) / 2:.0f}" y="{H - 8}" text-anchor="middle" class="axis-title">{escape(x_title)}</text>'
        )
    if y_title:
        mid = (PAD_T + H - PAD_B) / 2
        parts.append(
            f'<text x="14" y="{mid:.0f}" transform="rotate(-90 14 {mid:.0f})" text-anchor="middle" class="axis-title">{escape(y_title)}</text>'
        )
    return parts


def line_chart(
    series: list[dict],
    *,
    title: str,
    y_range: tuple[float, float] | None = None,
    bounds: tuple[float, float] | None = None,
    markers: list[dict] | None = None,
    x_title: str = "Date",
    y_title: str = "",
) -> SafeString:
    """Lines over time with optional confidence bands and vertical markers.

    ``series``: [{"name", "points": [(datetime or date, value, low, high)]}]; ``markers``:
    [{"at": datetime or date, "label"}] drawn as dashed vertical lines (drift flags).
    ``y_range`` fixes the y axis; otherwise it fits the data, with round ticks, within the
    metric's ``bounds``.
    """
    points = [(p[0], p[1]) for s in series for p in s["points"] if p[1] is not None]
    if not points:
        return mark_safe(f'<p class="muted chart-empty">{escape(title)}: no data yet.</p>')

    def ts(d) -> float:
        return (
            d.toordinal()
            if isinstance(d, date) and not hasattr(d, "timestamp")
            else d.timestamp() / 86400
        )

    xs = [ts(p[0]) for p in points] + [ts(m["at"]) for m in markers or []]
    values = [p[1] for p in points] + [
        p[k] for s in series for p in s["points"] for k in (2, 3) if len(p) > k and p[k] is not None
    ]
    lo, hi = y_range if y_range else axis_range(values, bounds)
    x, y = _x_scale(xs), _y_scale(lo, hi)
    first, last = min(points, key=lambda p: ts(p[0]))[0], max(points, key=lambda p: ts(p[0]))[0]
    # the end labels are anchored inwards, so neither is cut by the chart's edge
    x_labels = [(x(ts(first)), str(first)[:10], "start")]
    if str(last)[:10] != str(first)[:10]:
        x_labels.append((x(ts(last)), str(last)[:10], "end"))
    parts = _axes(lo, hi, y, x_labels, x_title=x_title, y_title=y_title)
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = sorted((p for p in s["points"] if p[1] is not None), key=lambda p: ts(p[0]))
        band = [p for p in pts if len(p) > 3 and p[2] is not None and p[3] is not None]
        if len(band) >= 2:
            upper = " ".join(f"{x(ts(p[0])):.1f},{y(p[3]):.1f}" for p in band)
            lower = " ".join(f"{x(ts(p[0])):.1f},{y(p[2]):.1f}" for p in reversed(band))
            parts.append(
                f'<polygon points="{upper} {lower}" fill="{color}" opacity="0.15" class="band"/>'
            )
        line = " ".join(f"{x(ts(p[0])):.1f},{y(p[1]):.1f}" for p in pts)
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2" class="series"><title>{escape(s["name"])}</title></polyline>'
        )
        for p in pts:
            parts.append(
                f'<circle cx="{x(ts(p[0])):.1f}" cy="{y(p[1]):.1f}" r="3" fill="{color}"><title>{escape(s["name"])} {str(p[0])[:16]}: {p[1]:.3f}</title></circle>'
            )
    for m in markers or []:
        mx = x(ts(m["at"]))
        parts.append(
            f'<line x1="{mx:.1f}" y1="{PAD_T}" x2="{mx:.1f}" y2="{H - PAD_B}" class="marker"><title>{escape(m["label"])}</title></line>'
        )
    legend = "".join(
        f'<span class="legend-item"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(s["name"])}</span>'
        for i, s in enumerate(series)
    )
    svg = f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" class="chart line-chart">{"".join(parts)}</svg>'
    return mark_safe(
        f'<figure class="chart-figure"><figcaption>{escape(title)}</figcaption>{svg}<div class="legend">{legend}</div></figure>'
    )


def bar_chart(
    bars: list[tuple[str, float]],
    *,
    title: str,
    y_range: tuple[float, float] | None = None,
    x_title: str = "",
    y_title: str = "",
) -> SafeString:
    if not bars:
        return mark_safe(f'<p class="muted chart-empty">{escape(title)}: no data yet.</p>')
    if y_range:
        lo, hi = y_range
    else:
        ticks = nice_ticks(min(0.0, min(v for _, v in bars)), max(v for _, v in bars) or 1.0)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        lo = min(0.0, min(v for _, v in bars))
        hi = math.ceil((max(v for _, v in bars) or 1.0) / step - 1e-9) * step
    y = _y_scale(lo, hi)
    step = (W - PAD_L - PAD_R) / len(bars)
    parts = _axes(lo, hi, y, [], x_title=x_title, y_title=y_title)
    for i, (label, value) in enumerate(bars):
        x0 = PAD_L + i * step + step * 0.15
        top, base = y(max(value, lo)), y(max(lo, 0))
        parts.append(
            f'<rect x="{x0:.1f}" y="{min(top, base):.1f}" width="{step * 0.7:.1f}" height="{abs(base - top):.1f}" fill="{PALETTE[0]}" class="bar"><title>{escape(label)}: {value:.3f}</title></rect>'
        )
        parts.append(
            f'<text x="{x0 + step * 0.35:.1f}" y="{H - PAD_B + 16}" text-anchor="middle" class="tick">{escape(label[:14])}</text>'
        )
    svg = f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" class="chart bar-chart">{"".join(parts)}</svg>'
    return mark_safe(
        f'<figure class="chart-figure"><figcaption>{escape(title)}</figcaption>{svg}</figure>'
    )


def confusion_title(block: str) -> str:
    """A confusion block's name (``kind/criterion``, criterion empty for the overall answer)
    as a reader says it: ``pairwise/`` -> "Pairwise: overall preference"."""
    kind, _, criterion = block.partition("/")
    label = {"score": "Scores", "pairwise": "Pairwise", "kb_verify": "KB verdicts"}.get(
        kind, kind.replace("_", " ").capitalize()
    )
    if criterion:
        return f"{label}: {criterion.replace('_', ' ')}"
    return f"{label}: {'overall preference' if kind == 'pairwise' else 'overall'}"


def heatmap(
    labels: list[str],
    matrix: list[list[float]],
    *,
    title: str,
    row_title: str = "This rater's answer",
    col_title: str = "Other rater's answer",
    scale_label: str = "pairs of answers",
) -> SafeString:
    """A matrix as shaded cells (a confusion matrix, a head-to-head table): the darker, the
    more. Column labels are slanted so long names (models) never overlap; a colour scale
    under the grid says what the shades mean."""
    n = len(labels)
    if not n:
        return mark_safe("")
    names = [str(label) for label in labels]
    longest = min(max(len(x) for x in names), LABEL_MAX)
    cell = 44
    left = 34 + int(longest * 6.6)  # the row labels, right-aligned against the grid
    top = 30 + int(longest * 4.8)  # the slanted column labels
    width = left + cell * n + 10 + int(longest * 4.8)
    grid_bottom = top + cell * n
    height = grid_bottom + 56
    peak = max((v for row in matrix for v in row), default=0) or 1
    mid_x, mid_y = left + cell * n / 2, top + cell * n / 2
    parts = [
        f'<text x="{mid_x:.0f}" y="14" text-anchor="middle" class="axis-title">'
        f"{escape(col_title)}</text>",
        f'<text x="14" y="{mid_y:.0f}" transform="rotate(-90 14 {mid_y:.0f})" '
        f'text-anchor="middle" class="axis-title">{escape(row_title)}</text>',
    ]
    for i, name in enumerate(names):
        short = name if len(name) <= LABEL_MAX else name[: LABEL_MAX - 1] + "…"
        parts.append(
            f'<text x="{left - 6}" y="{top + i * cell + cell / 2 + 4:.0f}" text-anchor="end" class="tick row-label">{escape(short)}<title>{escape(name)}</title></text>'
        )
        cx, cy = left + i * cell + cell / 2, top - 6
        parts.append(
            f'<text x="{cx:.0f}" y="{cy}" transform="rotate(-40 {cx:.0f} {cy})" text-anchor="start" class="tick col-label">{escape(short)}<title>{escape(name)}</title></text>'
        )
        for j in range(n):
            v = matrix[i][j]
            shade = 0.08 + 0.85 * (v / peak)
            ink = "#fff" if shade > 0.55 else "#111"
            parts.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 2}" height="{cell - 2}" fill="#2457c5" fill-opacity="{shade:.2f}" class="cell"><title>{escape(names[i])} / {escape(names[j])}: {v:g}</title></rect>'
            )
            parts.append(
                f'<text x="{left + j * cell + cell / 2 - 1:.0f}" y="{top + i * cell + cell / 2 + 4:.0f}" text-anchor="middle" class="cell-label" style="fill:{ink}">{v:.0f}</text>'
            )
    # the colour scale: ten steps from none to the largest cell
    y0 = grid_bottom + 12
    span = min(cell * n, 220)
    for k in range(10):
        parts.append(
            f'<rect x="{left + k * span / 10:.1f}" y="{y0}" width="{span / 10 + 0.5:.1f}" height="10" fill="#2457c5" fill-opacity="{0.08 + 0.85 * k / 9:.2f}" class="scale"/>'
        )
    parts.append(
        f'<text x="{left}" y="{y0 + 24}" class="tick" data-scale="min">0</text>'
        f'<text x="{left + span}" y="{y0 + 24}" text-anchor="end" class="tick" data-scale="max">{peak:.3g}</text>'
        f'<text x="{left + span / 2:.0f}" y="{y0 + 38}" text-anchor="middle" class="tick">{escape(scale_label)}</text>'
    )
    svg = f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" class="chart heatmap" style="max-width:{width}px">{"".join(parts)}</svg>'
    return mark_safe(
        f'<figure class="chart-figure"><figcaption>{escape(title)}</figcaption>{svg}</figure>'
    )
