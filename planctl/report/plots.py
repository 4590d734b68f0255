"""Metric plots: every numeric metric a task's checks recorded, over its attempts, as a PNG drawn
with matplotlib (Agg, no display). A plot's file name is the hash of what it shows, so a report
rebuilt into the same folder redraws only the plots whose data changed."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from planctl.report.model import MetricSeries

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_STYLE = 1  # bump when the drawing changes, so that cached plots are redrawn
_SIZE_IN = (8.0, 2.8)
_DPI = 100
_LOG_SPAN = 1e3  # positive values spanning more than this many times get a log axis


def plot_name(metric: MetricSeries) -> str:
    """The PNG file name of a metric's plot: a hash of everything the plot shows."""
    shown = json.dumps([_STYLE, metric.title, metric.series], sort_keys=True)
    return f"metric-{hashlib.sha256(shown.encode('utf-8')).hexdigest()[:16]}.png"


class Plotter:
    """Draws metric plots on one reused figure: creating a figure and its axis ticks costs more
    than drawing a few lines, and a report may hold hundreds of plots."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib is slow to import
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self._figure: Figure = Figure(figsize=_SIZE_IN, dpi=_DPI)
        FigureCanvasAgg(self._figure)
        self._axes: Axes = self._figure.add_subplot()
        self._figure.subplots_adjust(left=0.09, right=0.78, bottom=0.17, top=0.95)
        self._axes.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8, min_n_ticks=1))
        self._axes.set_xlabel("attempt", fontsize=8)
        self._axes.tick_params(labelsize=8)
        self._axes.grid(alpha=0.3)

    def png(self, metric: MetricSeries) -> bytes:
        axes = self._axes
        for line in list(axes.lines):
            line.remove()
        if axes.get_legend() is not None:
            axes.get_legend().remove()
        values = [v for points in metric.series.values() for _, v in points]
        positive = [v for v in values if v > 0]
        log = len(positive) == len(values) and max(values) > _LOG_SPAN * min(values)
        axes.set_yscale("log" if log else "linear")
        for label, points in metric.series.items():
            xs, ys = zip(*points)
            axes.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.2, label=label)
        axes.relim()
        axes.autoscale_view()
        attempts = [n for points in metric.series.values() for n, _ in points]
        axes.set_xlim(min(attempts) - 0.5, max(attempts) + 0.5)
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        buffer = io.BytesIO()
        self._figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 3})
        return buffer.getvalue()


def draw(metrics: list[MetricSeries], existing: set[str]) -> Iterator[tuple[str, bytes | None]]:
    """(file name, PNG) for each metric; None for a plot already in ``existing`` (not redrawn)."""
    plotter: Plotter | None = None
    for metric in metrics:
        name = plot_name(metric)
        if name in existing:
            yield name, None
            continue
        plotter = plotter or Plotter()
        yield name, plotter.png(metric)
