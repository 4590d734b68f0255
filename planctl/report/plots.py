"""Layout of the metric plots, drawn as inline SVG by ``report/metric.svg.j2``: every numeric metric
a task's checks recorded, one line per series over the task's attempts (x: attempt number).

Why not matplotlib: a report holds hundreds of plots (750 for 50 plans), and matplotlib spends
some 40 ms of CPU on each, mostly laying out tick labels and encoding the PNG: half a minute for a
report that must be written in seconds. A line plot is a frame, a few ticks and a polyline, which
the browser draws from a few hundred bytes, sharp at any zoom and in the page's own font, with a
tooltip and a link to the attempt on each point. planctl computes the scales and ticks itself, as
it lays out the dependency graph and the timeline.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

from planctl.report.model import MetricSeries

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
WIDTH, HEIGHT = 800, 240
LEFT, RIGHT, TOP, BOTTOM = 88, 12, 10, 30  # margins around the axes: room for the tick labels
LOG_SPAN = 1e3  # positive values spanning more than this factor get a log axis
X_TICKS, Y_TICKS, LOG_TICKS = 6, 4, 6  # at most this many intervals between ticks
MARKED_POINTS = 250  # a series with more points is drawn as its line alone: a mark each would bloat the page
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


class Tick(NamedTuple):
    at: float  # pixel position along its axis
    label: str


class Mark(NamedTuple):  # thousands per report: a tuple is quicker to make than a dataclass
    x: float
    y: float
    title: str  # tooltip: attempt, series and value
    href: str


@dataclass(frozen=True)
class Line:
    name: str
    colour: str
    points: str  # SVG polyline points
    marks: list[Mark]


@dataclass(frozen=True)
class Plot:
    width: int
    height: int
    left: int  # the axes' box, in pixels
    top: int
    right: int
    bottom: int
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    log: bool
    lines: list[Line]


def legend(metric: MetricSeries) -> list[tuple[str, str]]:
    """(series name, colour) in drawing order, for the page's legend."""
    return [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(metric.series)]


def plot(metric: MetricSeries) -> Plot:
    """The plot of one metric: values over attempt numbers. Values that are not finite (NaN, inf)
    are left out; a metric with none left gets empty axes."""
    series = {name: [(n, v) for n, v in points if math.isfinite(v)] for name, points in metric.series.items()}
    attempts = [n for points in metric.series.values() for n, _ in points]
    values = [v for points in series.values() for _, v in points]
    log = bool(values) and min(values) > 0 and max(values) > LOG_SPAN * min(values)
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    first, last = (min(attempts), max(attempts)) if attempts else (1, 1)
    x_lo, x_hi = first - max(0.5, (last - first) * 0.03), last + max(0.5, (last - first) * 0.03)
    x_ticks = [t for t in nice_ticks(x_lo, x_hi, X_TICKS, whole=True) if x_lo <= t <= x_hi]

    def x_px(n: float) -> float:
        return LEFT + (n - x_lo) / (x_hi - x_lo) * (right - LEFT)

    shown = [math.log10(v) for v in values] if log else values
    y_lo, y_hi = _padded(min(shown), max(shown)) if shown else (0.0, 1.0)
    y_ticks: list[tuple[float, str]]
    if log:
        y_ticks = [(t, "10" + str(t).translate(_SUPERSCRIPT)) for t in _decades(y_lo, y_hi)]
    else:
        whole = all(float(v).is_integer() for v in values)  # counts (junit) get whole-number ticks
        ticks = [t for t in nice_ticks(y_lo, y_hi, Y_TICKS, whole) if y_lo <= t <= y_hi]
        y_ticks = list(zip(ticks, tick_labels(ticks)))

    def y_px(v: float) -> float:
        return bottom - ((math.log10(v) if log else v) - y_lo) / (y_hi - y_lo) * (bottom - TOP)

    lines = []
    for (name, colour), points in zip(legend(metric), series.values(), strict=True):
        xy = [(round(x_px(n), 1), round(y_px(v), 1), n, v) for n, v in points]
        marks = [Mark(x, y, f"#{n} {name} = {v:.6g}", f"#attempt-{n}") for x, y, n, v in xy]
        polyline = " ".join(f"{x:g},{y:g}" for x, y, _, _ in xy)
        lines.append(Line(name, colour, polyline, marks if len(marks) <= MARKED_POINTS else []))
    return Plot(
        WIDTH,
        HEIGHT,
        LEFT,
        TOP,
        right,
        bottom,
        [Tick(round(x_px(t), 1), str(int(t))) for t in x_ticks],
        [Tick(round(bottom - (t - y_lo) / (y_hi - y_lo) * (bottom - TOP), 1), label) for t, label in y_ticks],
        log,
        lines,
    )


def _padded(lo: float, hi: float) -> tuple[float, float]:
    """The axis range for data from ``lo`` to ``hi``: 5 % more on each side, or some room around
    a single value."""
    if hi > lo:
        pad = (hi - lo) * 0.05
        return lo - pad, hi + pad
    pad = abs(lo) * 0.05 or 1.0
    return lo - pad, hi + pad


def nice_ticks(lo: float, hi: float, intervals: int, whole: bool = False) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten apart) from at or below ``lo`` to at or
    above ``hi``, at most ``intervals`` steps inside the range; whole numbers only with ``whole``."""
    raw = (hi - lo) / intervals
    magnitude = 10 ** math.floor(math.log10(raw))
    step = 10 * magnitude
    for factor in (1, 2, 2.5, 5):
        candidate = factor * magnitude
        if (hi - lo) / candidate <= intervals and not (whole and not float(candidate).is_integer()):
            step = candidate
            break
    step = max(step, 1.0) if whole else step
    first, last = math.floor(lo / step), math.ceil(hi / step)
    return [k * step for k in range(first, last + 1)]


def tick_labels(ticks: list[float]) -> list[str]:
    """The shortest labels that tell the ticks apart and read as their values: plain decimals
    (100025, 0.25) unless the numbers are very large or the steps very small (1.5e7, 2e-5)."""
    if not ticks:
        return []
    step = min((b - a for a, b in itertools.pairwise(ticks)), default=abs(ticks[0]) or 1.0)
    plain = step >= 1e-4 and max(abs(t) for t in ticks) < 1e6
    formats = [f".{digits}f" for digits in range(10)] if plain else [f".{digits}g" for digits in range(1, 17)]
    for spec in formats:
        labels = [format(t, spec) for t in ticks]
        if all(abs(float(label) - t) <= step * 1e-6 for label, t in zip(labels, ticks)):
            break
    return [_compact(label) for label in labels]


def _compact(label: str) -> str:
    """1e+05 as 1e5, -0 as 0."""
    mantissa, e, exponent = label.partition("e")
    if float(mantissa) == 0:
        return mantissa.lstrip("-")
    return f"{mantissa}e{int(exponent)}" if e else mantissa


def _decades(lo: float, hi: float) -> list[int]:
    """Powers of ten (as exponents) inside a log axis from 10**lo to 10**hi; every second, third...
    when there are many."""
    first, last = math.ceil(lo), math.floor(hi)
    every = max(1, math.ceil((last - first) / LOG_TICKS))
    return list(range(first, last + 1, every))
