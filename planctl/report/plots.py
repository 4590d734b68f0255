"""Metric plots: every numeric metric a task's checks recorded, over its attempts, as a PNG drawn
with matplotlib (Agg, no display).

A report may hold hundreds of plots, and matplotlib spends most of a plot's time laying out text,
so the drawing is kept lean: one reused figure per process (creating axes and ticks costs more than
drawing lines), few ticks, and the legend and axis title in the HTML beside the image (series are
coloured from :data:`PALETTE`, which the page's legend uses too). Many plots are drawn by several
processes at once. A plot's file name is the hash of what it shows, so a report rebuilt into the
same folder redraws only the plots whose data changed.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import multiprocessing
import os
from typing import TYPE_CHECKING

from planctl.report.model import MetricSeries

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STYLE = 3  # bump when the drawing changes, so that plots kept from an earlier report are redrawn
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
WIDTH_PX, HEIGHT_PX = 800, 240
_DPI = 100
_LOG_SPAN = 1e3  # positive values spanning more than this factor get a log axis
_PARALLEL_FROM = 24  # fewer plots than this are drawn in this process: starting workers costs more
_MAX_WORKERS = 8


def plot_name(metric: MetricSeries) -> str:
    """The PNG file name of a metric's plot: a hash of everything the plot shows."""
    shown = json.dumps([STYLE, metric.title, metric.series], sort_keys=True)
    return f"metric-{hashlib.sha256(shown.encode('utf-8')).hexdigest()[:16]}.png"


def legend(metric: MetricSeries) -> list[tuple[str, str]]:
    """(series name, colour) in drawing order, for the page's legend."""
    return [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(metric.series)]


class Plotter:
    """Draws metric plots on one reused figure and axes."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib is slow to import
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self._figure: Figure = Figure(figsize=(WIDTH_PX / _DPI, HEIGHT_PX / _DPI), dpi=_DPI)
        FigureCanvasAgg(self._figure)
        self._axes: Axes = self._figure.add_subplot()
        self._figure.subplots_adjust(left=0.11, right=0.985, bottom=0.12, top=0.96)
        self._axes.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6, min_n_ticks=1))
        self._axes.tick_params(labelsize=10)  # legible when the page shows the plot narrower
        self._axes.grid(alpha=0.3)
        self._max_n_locator = MaxNLocator

    def png(self, metric: MetricSeries) -> bytes:
        axes = self._axes
        for line in list(axes.lines):
            line.remove()
        values = [v for points in metric.series.values() for _, v in points]
        log = min(values) > 0 and max(values) > _LOG_SPAN * min(values)
        axes.set_yscale("log" if log else "linear")
        if not log:  # counts (junit) get whole-number ticks
            whole = all(float(v).is_integer() for v in values)
            axes.yaxis.set_major_locator(self._max_n_locator(nbins=4, integer=whole, min_n_ticks=1))
        for (_, colour), points in zip(legend(metric), metric.series.values(), strict=True):
            xs, ys = zip(*points)
            axes.plot(xs, ys, color=colour, marker="o", markersize=3.5, linewidth=1.2)
        axes.relim()
        axes.autoscale_view()
        attempts = [n for points in metric.series.values() for n, _ in points]
        axes.set_xlim(min(attempts) - 0.5, max(attempts) + 0.5)
        buffer = io.BytesIO()
        self._figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
        return buffer.getvalue()


def _draw_chunk(metrics: list[MetricSeries]) -> list[bytes]:
    plotter = Plotter()
    return [plotter.png(metric) for metric in metrics]


def draw(metrics: list[MetricSeries]) -> list[bytes]:
    """The PNG of each metric, in order; several processes share the work when there is much of it."""
    workers = min(
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, _MAX_WORKERS
    )
    if len(metrics) < _PARALLEL_FROM or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return _draw_chunk(metrics) if metrics else []
    size = -(-len(metrics) // workers)
    chunks = [metrics[i : i + size] for i in range(0, len(metrics), size)]
    # fork: the workers start at once with planctl already imported; planctl runs no threads here.
    with concurrent.futures.ProcessPoolExecutor(len(chunks), mp_context=multiprocessing.get_context("fork")) as pool:
        return [png for pngs in pool.map(_draw_chunk, chunks) for png in pngs]
