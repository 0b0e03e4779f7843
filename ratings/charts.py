"""Small server-rendered SVG charts: no JavaScript, no build step, escaped labels.

Each function returns a complete ``<svg>`` element as safe HTML. The data behind every chart
is also served by the API and as CSV (``ratings/api_quality.py``).
"""

from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 220, 44, 16, 14, 34
PALETTE = ["#2457c5", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207"]


def _x_scale(xs: list[float]):
    lo, hi = min(xs), max(xs)
    span = (hi - lo) or 1.0
    return lambda x: PAD_L + (x - lo) / span * (W - PAD_L - PAD_R)


def _y_scale(lo: float, hi: float):
    span = (hi - lo) or 1.0
    return lambda y: PAD_T + (1 - (y - lo) / span) * (H - PAD_T - PAD_B)


def _axes(y_lo: float, y_hi: float, y, x_labels: list[tuple[float, str]]) -> list[str]:
    parts = [
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" class="axis"/>'
    ]
    for i in range(5):
        v = y_lo + (y_hi - y_lo) * i / 4
        parts.append(
            f'<line x1="{PAD_L}" y1="{y(v):.1f}" x2="{W - PAD_R}" y2="{y(v):.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">{v:.2f}</text>'
        )
    for x, label in x_labels:
        parts.append(
            f'<text x="{x:.1f}" y="{H - PAD_B + 16}" text-anchor="middle" class="tick">{escape(label)}</text>'
        )
    return parts


def line_chart(
    series: list[dict],
    *,
    title: str,
    y_range: tuple[float, float] | None = None,
    markers: list[dict] | None = None,
) -> SafeString:
    """Lines over time with optional confidence bands and vertical markers.

    ``series``: [{"name", "points": [(datetime or date, value, low, high)]}]; ``markers``:
    [{"at": datetime or date, "label"}] drawn as dashed vertical lines (drift flags).
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
    lo, hi = y_range if y_range else (min(values), max(values))
    if y_range is None:
        pad = (hi - lo) * 0.1 or 0.1
        lo, hi = lo - pad, hi + pad
    x, y = _x_scale(xs), _y_scale(lo, hi)
    first, last = min(points, key=lambda p: ts(p[0]))[0], max(points, key=lambda p: ts(p[0]))[0]
    parts = _axes(lo, hi, y, [(x(ts(first)), str(first)[:10]), (x(ts(last)), str(last)[:10])])
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
    bars: list[tuple[str, float]], *, title: str, y_range: tuple[float, float] | None = None
) -> SafeString:
    if not bars:
        return mark_safe(f'<p class="muted chart-empty">{escape(title)}: no data yet.</p>')
    lo, hi = y_range or (min(0.0, min(v for _, v in bars)), max(v for _, v in bars) or 1.0)
    y = _y_scale(lo, hi)
    step = (W - PAD_L - PAD_R) / len(bars)
    parts = _axes(lo, hi, y, [])
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


def heatmap(labels: list[str], matrix: list[list[float]], *, title: str) -> SafeString:
    """A confusion (coincidence) matrix: darker cells, more pairs of raters gave that pair."""
    n = len(labels)
    if not n:
        return mark_safe("")
    cell, off = 44, 90
    size = off + cell * n + 10
    peak = max((v for row in matrix for v in row), default=0) or 1
    parts = []
    for i, label in enumerate(labels):
        parts.append(
            f'<text x="{off - 6}" y="{off + i * cell + cell / 2 + 4:.0f}" text-anchor="end" class="tick">{escape(label[:12])}</text>'
        )
        parts.append(
            f'<text x="{off + i * cell + cell / 2:.0f}" y="{off - 8}" text-anchor="middle" class="tick">{escape(label[:12])}</text>'
        )
        for j in range(n):
            v = matrix[i][j]
            shade = 0.08 + 0.85 * (v / peak)
            parts.append(
                f'<rect x="{off + j * cell}" y="{off + i * cell}" width="{cell - 2}" height="{cell - 2}" fill="#2457c5" fill-opacity="{shade:.2f}" class="cell"><title>{escape(labels[i])} / {escape(labels[j])}: {v:g}</title></rect>'
            )
            parts.append(
                f'<text x="{off + j * cell + cell / 2 - 1:.0f}" y="{off + i * cell + cell / 2 + 4:.0f}" text-anchor="middle" class="cell-label">{v:.0f}</text>'
            )
    svg = f'<svg viewBox="0 0 {size} {size}" role="img" aria-label="{escape(title)}" class="chart heatmap" style="max-width:{size}px">{"".join(parts)}</svg>'
    return mark_safe(
        f'<figure class="chart-figure"><figcaption>{escape(title)}</figcaption>{svg}</figure>'
    )
