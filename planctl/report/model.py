"""What the report shows, gathered from plans, attempt records and the working tree: one
:class:`PlanReport` per plan (progress, phases, tasks with readiness and freshness, attempts,
metric series), built on the ledger entries so that the page and the ledgers agree."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TypeGuard
from urllib.parse import quote

from planctl.freshness import Freshness, Hasher, plan_freshness
from planctl.graph import Counts, blockers
from planctl.ledger import Entry, entries
from planctl.project import Project
from planctl.records import Attempt, Records
from planctl.schema import Phase, Plan, Task
from planctl.store import PlanFile

JUNIT_SERIES = ("passed", "failed", "errors", "skipped")


@dataclass(frozen=True)
class WaitsOn:
    """What a blocked task waits on, as the plan page links it: a task of the plan (``#task-X``),
    another plan of the report (its page), or an initiative this project has no plan for (no link)."""

    id: str
    href: str | None


@dataclass(frozen=True)
class TaskView:
    phase: Phase
    task: Task
    ready: bool
    waiting_for: list[str]
    freshness: Freshness | None
    attempts: list[Attempt]
    waits_on: list[WaitsOn] = field(default_factory=list)

    @property
    def state_class(self) -> str:
        """CSS class of the task's state (open, in_progress, blocked, done, skipped), plus ready or
        waiting (for open prerequisites) for tasks someone can work on."""
        name = self.task.state.name.lower()
        if self.task.state.workable:
            name += " ready" if self.ready else " waiting"
        if self.freshness is not None and self.freshness.status != "fresh":
            name += f" {self.freshness.status}"
        return name


@dataclass(frozen=True)
class Evidence:
    """Where the report keeps a bundle's summary and log (site-relative), if they exist."""

    summary: str | None
    log: str | None


@dataclass
class MetricSeries:
    """One numeric metric of one task over its attempts: named series of (attempt, value) points."""

    task: str
    key: str  # the attempt's metrics key: 'junit' or '<file>:<selector>'
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        if self.key == "junit":
            return f"{self.task} · junit counts"
        file, _, selector = self.key.rpartition(":")
        return f"{self.task} · {os.path.basename(file)}: {selector}"

    @property
    def attempts(self) -> int:
        return len({n for points in self.series.values() for n, _ in points})


@dataclass
class PlanReport:
    plan_file: PlanFile
    entry: Entry
    tasks: list[TaskView]
    metrics: list[MetricSeries]
    evidence: dict[int, Evidence] = field(default_factory=dict)  # by attempt number; filled by the site

    @property
    def name(self) -> str:
        return self.plan_file.name

    @property
    def plan(self) -> Plan:
        return self.plan_file.plan

    @property
    def counts(self) -> Counts:
        return self.entry.counts

    @property
    def progress(self) -> float:
        return self.counts.closed / self.counts.total if self.counts.total else 0.0

    def count(self, what: str) -> int:
        """ready, waiting (open or in progress, with open prerequisites), in_progress, blocked ([B]),
        stale or unverifiable tasks."""
        if what == "ready":
            return sum(t.ready for t in self.tasks)
        if what == "waiting":
            return sum(t.task.state.workable and not t.ready for t in self.tasks)
        if what in ("in_progress", "blocked"):
            return getattr(self.counts, what)
        return sum(t.freshness is not None and t.freshness.status == what for t in self.tasks)

    def phase_counts(self, phase: Phase) -> Counts:
        return Counts.of(phase.tasks)


def collect(project: Project, plan_files: list[PlanFile]) -> list[PlanReport]:
    hasher = Hasher()
    plan_pages = {plan_file.plan.initiative.id: f"../{quote(plan_file.name)}/index.html" for plan_file in plan_files}
    reports = []
    for plan_file, entry in zip(plan_files, entries(project, plan_files, {}), strict=True):
        records = Records(initiative=plan_file.plan.initiative.id, attempts=entry.attempts)
        freshness = {f.task: f for f in plan_freshness(project, plan_file, records, hasher)}
        by_task: dict[str, list[Attempt]] = {}
        for attempt in entry.attempts:
            by_task.setdefault(attempt.task, []).append(attempt)
        ready = {task.id for _, task in entry.ready}
        tasks = [
            TaskView(
                phase,
                task,
                task.id in ready,
                [t.id for t in blockers(plan_file.plan, phase, task)] if task.state.workable else [],
                freshness.get(task.id),
                by_task.get(task.id, []),
                waits_on(plan_file.plan, task, plan_pages),
            )
            for phase, task in plan_file.plan.tasks()
        ]
        order = {view.task.id: i for i, view in enumerate(tasks)}
        metrics = sorted(metric_series(entry.attempts), key=lambda m: order.get(m.task, len(order)))
        reports.append(PlanReport(plan_file, entry, tasks, metrics))
    return reports


def waits_on(plan: Plan, task: Task, plan_pages: dict[str, str]) -> list[WaitsOn]:
    """What a blocked task waits on, each with its link from the plan's page (``plan_pages``: the
    page of each initiative in the report, relative to a plan page)."""
    own = {t.id for _, t in plan.tasks()}
    return [WaitsOn(name, f"#task-{quote(name)}" if name in own else plan_pages.get(name)) for name in task.waits_on]


def metric_series(attempts: list[Attempt]) -> list[MetricSeries]:
    """Every numeric metric the checks recorded, per task and metric, in the order first seen."""
    found: dict[tuple[str, str], MetricSeries] = {}
    for attempt in sorted(attempts, key=lambda a: a.number):
        for key, value in attempt.metrics.items():
            named = _named_numbers(key, value)
            if not named:
                continue
            metric = found.setdefault((attempt.task, key), MetricSeries(attempt.task, key))
            for label, number in named.items():
                metric.series.setdefault(label, []).append((attempt.number, number))
    return list(found.values())


def _named_numbers(key: str, value: object) -> dict[str, float]:
    """The numbers of one recorded metric, by series name."""
    if not isinstance(value, dict):
        return {key: float(value)} if _is_number(value) else {}
    if key == "junit":  # passed and failed always; errors and skipped when there are any
        shown = [n for n in JUNIT_SERIES if n in ("passed", "failed") or value.get(n)]
        return {name: float(value[name]) for name in shown if _is_number(value.get(name))}
    values, labels = value.get("values"), value.get("labels")
    if isinstance(values, list):
        if not (isinstance(labels, list) and len(labels) == len(values)):
            labels = [f"value {i}" for i in range(len(values))]
        pairs = [(str(label), v) for label, v in zip(labels, values) if _is_number(v)]
        return dict(zip(_short_labels([label for label, _ in pairs]), (float(v) for _, v in pairs)))
    return {name: float(value[name]) for name in ("min", "max") if _is_number(value.get(name))}


def _short_labels(labels: list[str]) -> list[str]:
    """Labels without the dotted prefix they all share (results.0.gradients.cell_a -> cell_a)."""
    parts = [label.split(".") for label in labels]
    common = 0
    while parts and all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return [".".join(p[common:]) for p in parts]


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class BundleFolders:
    """Bundle folders that attempt records name, resolved (links followed) and kept inside the
    project. Thousands of bundles share a few parent folders, which are resolved once each."""

    def __init__(self, project: Project) -> None:
        self.root = os.path.realpath(project.root)
        self._parents: dict[str, str] = {}

    def resolve(self, relative: str) -> str | None:
        """``relative`` (a bundle path from a record) under the project root, or None if it leads out."""
        path = os.path.join(self.root, relative)
        parent, name = os.path.split(path)
        if name in ("", ".", "..") or os.path.islink(path):
            real = os.path.realpath(path)
        else:
            if parent not in self._parents:
                self._parents[parent] = os.path.realpath(parent)
            real = os.path.join(self._parents[parent], name)
        return real if real == self.root or real.startswith(self.root + os.sep) else None
