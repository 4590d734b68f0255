"""Layout of a plan's dependency graph, drawn as SVG by ``report/graph.svg.j2``.

Why not graphviz, mermaid or a layout library: a plan's graph is already layered. Phases come in
order and tasks sit inside their phase, so the layout is a grid: one column per phase, one row per
task, edges for a phase's ``requires`` (between column headers), a task's ``depends_on``
(between boxes) and what a blocked task ``waits_on`` in the same plan (dashed, between boxes).
Computing that grid takes a few lines and no dependency. graphviz would need the ``dot`` binary
(a system package, not pip-installable, which CI and every user would have to install) to
reorder a graph whose order is meaningful; mermaid draws in the browser with a megabyte of
JavaScript, which a page that must work from disk without a CDN would have to vendor.
"""

from __future__ import annotations

from dataclasses import dataclass

from planctl.report.model import TaskView
from planctl.schema import Phase, TaskState

COLUMN = 210  # width of a phase column's boxes
GAP_X = 70  # between columns: room for the edges
BOX_H = 40
GAP_Y = 12
HEADER_H = 44
MARGIN = 24
TOP = 40  # above the headers: room for edges between phases that are not neighbours
DESCRIPTION_CHARS = 30
TITLE_CHARS = 28


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    label: str
    text: str
    title: str  # tooltip: the full text
    css: str
    href: str

    @property
    def mid_y(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True)
class Edge:
    path: str  # SVG path data
    css: str


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    headers: list[Box]
    boxes: list[Box]
    edges: list[Edge]


def layout(phases: list[Phase], tasks: list[TaskView]) -> Layout:
    """Boxes and edges for the phases and tasks of one plan (in plan order)."""
    all_phases = {phase.id: phase for phase in phases}
    column = {phase_id: i for i, phase_id in enumerate(all_phases)}
    headers = {
        phase.id: Box(
            x=MARGIN + column[phase.id] * (COLUMN + GAP_X),
            y=TOP,
            w=COLUMN,
            h=HEADER_H,
            label=f"Phase {phase.id}",
            text=_shorten(phase.title, TITLE_CHARS),
            title=f"Phase {phase.id} — {phase.title}",
            css="phase",
            href=f"#phase-{phase.id}",
        )
        for phase in all_phases.values()
    }
    boxes: dict[str, Box] = {}
    rows: dict[str, int] = {}
    for view in tasks:
        row = rows.get(view.phase.id, 0)
        rows[view.phase.id] = row + 1
        header = headers[view.phase.id]
        task = view.task
        boxes[task.id] = Box(
            x=header.x,
            y=TOP + HEADER_H + 16 + row * (BOX_H + GAP_Y),
            w=COLUMN,
            h=BOX_H,
            label=f"{task.id} {task.state.value}",
            text=_shorten(task.description, DESCRIPTION_CHARS),
            title=_tooltip(view),
            css=f"task {view.state_class}",
            href=f"#task-{task.id}",
        )
    edges = [
        Edge(_between_headers(headers[required], headers[phase.id]), "requires")
        for phase in all_phases.values()
        for required in phase.requires
        if required in headers
    ]
    edges += [
        Edge(_between_boxes(boxes[dep], boxes[view.task.id]), "depends")
        for view in tasks
        for dep in view.task.depends_on
        if dep in boxes
    ]
    edges += [
        Edge(_between_boxes(boxes[waited.id], boxes[view.task.id]), "waits")
        for view in tasks
        for waited in view.waits_on
        if waited.id in boxes
    ]
    deepest = max(rows.values(), default=0)
    width = 2 * MARGIN + len(phases) * COLUMN + max(len(phases) - 1, 0) * GAP_X
    height = TOP + HEADER_H + 16 + deepest * (BOX_H + GAP_Y) + MARGIN
    return Layout(width, height, list(headers.values()), list(boxes.values()), edges)


def _tooltip(view: TaskView) -> str:
    task = view.task
    text = f"{task.id} {task.state.value} — {task.description}"
    if task.state is TaskState.BLOCKED:
        text += f" — blocked: {task.reason}"
        text += f" (waits on {', '.join(w.id for w in view.waits_on)})" if view.waits_on else ""
    elif view.waiting_for:
        text += f" — waiting for {', '.join(view.waiting_for)}"
    if view.freshness:
        text += f" — evidence {view.freshness.status}: {view.freshness.reason}"
    return text


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _between_headers(source: Box, target: Box) -> str:
    if target.x == source.x + COLUMN + GAP_X:  # neighbours: straight across
        return f"M{source.x + source.w},{source.mid_y} L{target.x},{target.mid_y}"
    # Further apart (or backwards): an arc over the headers between them.
    x1, x2 = source.x + source.w / 2, target.x + target.w / 2
    return f"M{x1},{source.y} C{x1},{source.y - 32} {x2},{target.y - 32} {x2},{target.y}"


def _between_boxes(source: Box, target: Box) -> str:
    if source.x == target.x:  # same phase: a bow on the right of the column
        x, bow = source.x + source.w, 18 + abs(target.y - source.y) / 12
        return f"M{x},{source.mid_y} C{x + bow},{source.mid_y} {x + bow},{target.mid_y} {x},{target.mid_y}"
    if source.x < target.x:
        x1, x2 = source.x + source.w, target.x
    else:
        x1, x2 = source.x, target.x + target.w
    bend = (x2 - x1) / 2
    return f"M{x1},{source.mid_y} C{x1 + bend},{source.mid_y} {x2 - bend},{target.mid_y} {x2},{target.mid_y}"
