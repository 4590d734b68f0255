"""Layout of a plan's attempts timeline, drawn as SVG by ``report/timeline.svg.j2``: one row per
task, one mark per attempt in the order they were made (a circle for run, a diamond for verify and
triage), coloured by outcome."""

from __future__ import annotations

from dataclasses import dataclass

from planctl.records import Attempt

LABEL_W = 70  # task ids on the left
ROW_H = 22
MAX_STEP = 18  # between attempts
PLOT_W = 860  # the marks squeeze into this width when there are many attempts
MARGIN = 12


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    css: str
    title: str
    href: str
    verify: bool


@dataclass(frozen=True)
class Timeline:
    width: float
    height: float
    rows: list[tuple[str, float]]  # task id, y
    marks: list[Mark]
    ticks: list[tuple[float, int]]  # x, attempt number


def timeline(task_ids: list[str], attempts: list[Attempt]) -> Timeline:
    """``task_ids`` in plan order; only tasks with attempts get a row."""
    ordered = sorted(attempts, key=lambda a: a.number)
    tried = {a.task for a in ordered}
    rows = [task for task in task_ids if task in tried] + sorted(tried - set(task_ids))
    row_y = {task: MARGIN + i * ROW_H + ROW_H / 2 for i, task in enumerate(rows)}
    step = min(MAX_STEP, PLOT_W / max(len(ordered), 1))
    x0 = LABEL_W + MARGIN
    marks = [
        Mark(
            x=x0 + i * step + step / 2,
            y=row_y[a.task],
            css=a.outcome,
            title=f"#{a.number} {a.task} {a.kind} {a.outcome}"
            + (f" — {a.reason}" if a.reason else "")
            + f" ({a.stamp})",
            href=f"#attempt-{a.number}",
            verify=a.kind != "run",
        )
        for i, a in enumerate(ordered)
    ]
    every = max(1, round(60 / step))  # a tick label about every 60 px
    ticks = [(x0 + i * step + step / 2, a.number) for i, a in enumerate(ordered) if i % every == 0]
    width = x0 + len(ordered) * step + MARGIN
    height = MARGIN * 2 + len(rows) * ROW_H + 14
    return Timeline(max(width, 300), height, [(task, row_y[task]) for task in rows], marks, ticks)
