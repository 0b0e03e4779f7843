"""Charts a reader trusts: round ticks within the metric's range, axis titles, end labels
inside the chart, a colour scale on heatmaps, readable heatmap titles."""

import re
from datetime import date

import pytest

from ratings import charts


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (-0.13, 0.87, [0.0, 0.2, 0.4, 0.6, 0.8]),
        (3.0, 47.0, [10.0, 20.0, 30.0, 40.0]),
    ],
)
def test_ticks_are_round_and_inside_the_range(lo, hi, expected):
    assert charts.nice_ticks(lo, hi) == pytest.approx(expected)


def test_the_axis_never_leaves_the_metrics_range():
    lo, hi = charts.axis_range([0.82, 0.97, 0.99], (-1.0, 1.0))
    assert -1.0 <= lo < 0.82 and hi == 1.0
    ticks = charts.nice_ticks(lo, hi)
    assert all(lo <= t <= hi for t in ticks) and ticks[-1] == 1.0


def test_line_chart_has_axis_titles_round_ticks_and_inward_end_labels():
    svg = str(
        charts.line_chart(
            [{"name": "alpha", "points": [(date(2025, 3, 1), 0.83), (date(2025, 3, 9), 0.97)]}],
            title="Agreement",
            bounds=(-1.0, 1.0),
            y_title="Agreement",
        )
    )
    ticks = [float(t) for t in re.findall(r'class="tick">(-?[\d.]+)</text>', svg)]
    assert ticks and max(ticks) <= 1.0
    assert all(round(t * 100) == pytest.approx(t * 100) for t in ticks)  # no 0.8734
    assert ">Agreement</text>" in svg and ">Date</text>" in svg
    assert 'text-anchor="start" class="tick">2025-03-01' in svg
    assert 'text-anchor="end" class="tick">2025-03-09' in svg


def test_heatmap_has_a_colour_scale_and_a_readable_title():
    svg = str(charts.heatmap(["-1", "0", "1"], [[4, 1, 0], [1, 2, 1], [0, 1, 9]], title="t"))
    assert svg.count('class="scale"') == 10
    assert 'data-scale="max">9</text>' in svg
    assert charts.confusion_title("pairwise/") == "Pairwise: overall preference"
    assert charts.confusion_title("score/helpfulness") == "Scores: helpfulness"


def test_the_leaderboards_interval_chart_has_round_ticks_and_an_axis_title():
    from exports.report_views import interval_chart

    svg = str(
        interval_chart(
            [("model-a", 1043.7, 1011.2, 1077.9), ("model-b", 956.3, 921.8, 990.4)],
            title="ratings",
            reference=1000.0,
            digits=0,
            x_title="Rating (Elo scale)",
        )
    )
    ticks = [
        float(t) for t in re.findall(r'text-anchor="middle" class="tick">([\d.]+)</text>', svg)
    ]
    assert ticks and all(t % 10 == 0 for t in ticks), ticks  # 900, 950, ... not 913.6
    assert ">Rating (Elo scale)</text>" in svg
