"""The report's metric plots: scales, ticks and lines laid out by planctl and drawn as SVG."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from planctl.project import Project
from planctl.report.model import MetricSeries
from planctl.report.plots import (
    HEIGHT,
    LEFT,
    MARKED_POINTS,
    PALETTE,
    TOP,
    WIDTH,
    nice_ticks,
    plot,
    tick_labels,
)
from planctl.views import environment

SVG = "{http://www.w3.org/2000/svg}"


def series(**named: list[tuple[int, float]]) -> MetricSeries:
    return MetricSeries("D2", "g.json:results.0.gradients", dict(named))


def test_points_land_inside_the_axes_in_attempt_and_value_order():
    drawn = plot(series(cell_a=[(3, 10.0), (5, 30.0), (9, 20.0)], cell_b=[(5, -5.0)]))
    assert (drawn.width, drawn.height, drawn.left, drawn.top) == (WIDTH, HEIGHT, LEFT, TOP)
    assert [line.name for line in drawn.lines] == ["cell_a", "cell_b"]
    assert [line.colour for line in drawn.lines] == list(PALETTE[:2])
    a = drawn.lines[0].marks
    assert [m.href for m in a] == ["#attempt-3", "#attempt-5", "#attempt-9"]
    assert a[0].title == "#3 cell_a = 10" and drawn.lines[1].marks[0].title == "#5 cell_b = -5"
    assert a[0].x < a[1].x < a[2].x and a[1].y < a[2].y < a[0].y  # larger values higher up (smaller y)
    assert all(drawn.left < m.x < drawn.right and drawn.top < m.y < drawn.bottom for m in a)
    assert drawn.lines[0].points == " ".join(f"{m.x:g},{m.y:g}" for m in a)
    # The x ticks are whole attempt numbers; the y ticks round values with labels that read as them.
    assert [t.label for t in drawn.x_ticks] == ["4", "6", "8"]
    assert [t.label for t in drawn.y_ticks] == ["0", "10", "20", "30"]
    at = [t.at for t in drawn.y_ticks]
    assert at == sorted(at, reverse=True) and math.isclose(at[0] - at[1], at[2] - at[3], abs_tol=0.2)


def test_junit_counts_get_whole_ticks_and_one_attempt_still_gets_axes():
    drawn = plot(MetricSeries("A1", "junit", {"passed": [(7, 3.0)], "failed": [(7, 0.0)]}))
    assert [t.label for t in drawn.x_ticks] == ["7"]
    assert [t.label for t in drawn.y_ticks] == ["0", "1", "2", "3"]
    assert not drawn.log


def test_values_spanning_decades_get_a_log_axis_labelled_in_powers_of_ten():
    drawn = plot(series(loss=[(1, 1e-3), (2, 0.5), (3, 40.0)]))
    assert drawn.log
    assert [t.label for t in drawn.y_ticks] == ["10⁻³", "10⁻²", "10⁻¹", "10⁰", "10¹"]
    first, last = drawn.lines[0].marks[0], drawn.lines[0].marks[-1]
    assert first.y > last.y and drawn.top < last.y < first.y < drawn.bottom
    # A negative value (or zero) keeps the axis linear.
    assert not plot(series(loss=[(1, 0.0), (2, 40000.0)])).log


def test_values_that_are_not_finite_are_left_out():
    drawn = plot(series(a=[(1, 2.0), (2, math.nan), (3, math.inf), (4, 3.0)], b=[(2, math.nan)]))
    assert [m.href for m in drawn.lines[0].marks] == ["#attempt-1", "#attempt-4"]
    assert drawn.lines[1].points == "" and drawn.lines[1].marks == []
    assert [t.label for t in drawn.x_ticks] == ["1", "2", "3", "4"]  # the attempts still span the axis


def test_a_long_series_is_drawn_as_a_line_without_a_mark_per_point():
    drawn = plot(series(a=[(n, float(n % 7)) for n in range(1, MARKED_POINTS + 2)]))
    assert drawn.lines[0].marks == [] and drawn.lines[0].points.count(",") == MARKED_POINTS + 1
    assert len(drawn.x_ticks) <= 7


@pytest.mark.parametrize(
    ("lo", "hi", "intervals", "whole", "expected"),
    [
        (0.0, 1.0, 4, False, [0.0, 0.25, 0.5, 0.75, 1.0]),
        (-0.3, 0.7, 4, False, [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75]),
        (97.5, 102.5, 4, False, [96.0, 98.0, 100.0, 102.0, 104.0]),
        (0.5, 3.5, 6, True, [0.0, 1.0, 2.0, 3.0, 4.0]),
        (0.6, 1.4, 6, True, [0.0, 1.0, 2.0]),
        (1.0, 5000.0, 6, True, [0.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0]),
    ],
)
def test_nice_ticks_are_round_and_cover_the_range(lo, hi, intervals, whole, expected):
    ticks = nice_ticks(lo, hi, intervals, whole)
    assert ticks == pytest.approx(expected)
    assert ticks[0] <= lo and ticks[-1] >= hi and sum(lo <= t <= hi for t in ticks) >= 1


def test_tick_labels_are_short_and_exact():
    assert tick_labels([0.1 * 3, 0.6000000000000001, 0.9]) == ["0.3", "0.6", "0.9"]
    assert tick_labels([100000.0, 100025.0, 100050.0]) == ["100000", "100025", "100050"]
    assert tick_labels([-2e-05, 0.0, 2e-05]) == ["-2e-5", "0", "2e-5"]
    assert tick_labels([1.5e7, 2e7]) == ["1.5e7", "2e7"]
    assert tick_labels([-0.0]) == ["0"]


def test_the_template_draws_a_valid_svg_with_a_line_and_a_linked_point_per_attempt(tmp_path):
    env = environment(Project(tmp_path), html=True)
    metric = series(cell_a=[(3, 1.5), (4, 2.5)], cell_b=[(3, -1.0), (4, -2.0)])
    text = env.get_template("report/metric.svg.j2").render(metric=metric, plot=plot(metric))
    svg = ET.fromstring(text)
    assert svg.get("class") == "metric-plot" and svg.get("viewBox") == f"0 0 {WIDTH} {HEIGHT}"
    assert svg.get("aria-label") == "D2 · g.json: results.0.gradients over attempts: cell_a, cell_b"
    lines = svg.findall(f"{SVG}g[@class='series']")
    assert [g.get("stroke") for g in lines] == list(PALETTE[:2])
    assert all(len(g.findall(f"{SVG}polyline")) == 1 for g in lines)
    links = [a.get("href") for a in svg.iter(f"{SVG}a")]
    assert links == ["#attempt-3", "#attempt-4"] * 2
    assert next(t.text for t in svg.iter(f"{SVG}title")) == "#3 cell_a = 1.5"
    assert [t.text for t in svg.iter(f"{SVG}text")] == [t.label for t in plot(metric).y_ticks] + ["3", "4"]
