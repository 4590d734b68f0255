"""What a plan's structure implies: progress counts, readiness, and structural mistakes.

A task is *ready* when it is open, every task in ``depends_on`` is closed (done or skipped), and
every task of each phase its phase ``requires`` is closed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from planctl.schema import Phase, Plan, Task, TaskState

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Counts:
    done: int
    skipped: int
    open: int

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.open

    @property
    def closed(self) -> int:
        return self.done + self.skipped

    @classmethod
    def of(cls, tasks: Iterable[Task]) -> Counts:
        tally = Counter(task.state for task in tasks)
        return cls(tally[TaskState.DONE], tally[TaskState.SKIPPED], tally[TaskState.OPEN])


def plan_status(counts: Counts) -> str:
    if counts.total and counts.open == 0:
        return "done"
    return "in progress" if counts.closed else "not started"


def prerequisites(plan: Plan, phase: Phase, task: Task) -> list[Task]:
    """Every task that must be closed before ``task`` can start."""
    needed = [t for p in plan.phases if p.id in phase.requires for t in p.tasks]
    return needed + [t for _, t in plan.tasks() if t.id in task.depends_on]


def blockers(plan: Plan, phase: Phase, task: Task) -> list[Task]:
    return [t for t in prerequisites(plan, phase, task) if not t.state.closed]


def ready_tasks(plan: Plan) -> list[tuple[Phase, Task]]:
    return [
        (phase, task)
        for phase, task in plan.tasks()
        if task.state is TaskState.OPEN and not blockers(plan, phase, task)
    ]


def structure_problems(plan: Plan) -> list[tuple[Loc, str]]:
    """Duplicate ids, references to unknown ids, and dependency cycles, each with its location."""
    problems: list[tuple[Loc, str]] = []
    phase_ids: set[str] = set()
    for i, phase in enumerate(plan.phases):
        if phase.id in phase_ids:
            problems.append((("phases", i, "id"), f"duplicate phase id '{phase.id}'"))
        phase_ids.add(phase.id)
    task_ids: set[str] = set()
    for i, phase in enumerate(plan.phases):
        for j, task in enumerate(phase.tasks):
            if task.id in task_ids:
                problems.append((("phases", i, "tasks", j, "id"), f"duplicate task id '{task.id}'"))
            task_ids.add(task.id)
    for i, phase in enumerate(plan.phases):
        for k, required in enumerate(phase.requires):
            if required not in phase_ids:
                problems.append((("phases", i, "requires", k), f"phase {phase.id} requires unknown phase '{required}'"))
        for j, task in enumerate(phase.tasks):
            for k, dep in enumerate(task.depends_on):
                if dep not in task_ids:
                    problems.append(
                        (
                            ("phases", i, "tasks", j, "depends_on", k),
                            f"task {task.id} depends on unknown task '{dep}'",
                        )
                    )
    problems.extend(_cycles(plan))
    return problems


def _cycles(plan: Plan) -> list[tuple[Loc, str]]:
    locations = {
        task.id: ("phases", i, "tasks", j, "depends_on")
        for i, phase in enumerate(plan.phases)
        for j, task in enumerate(phase.tasks)
    }
    edges = {task.id: [t.id for t in prerequisites(plan, phase, task)] for phase, task in plan.tasks()}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    found: list[tuple[Loc, str]] = []
    seen_cycles: set[frozenset[str]] = set()

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                if frozenset(cycle) not in seen_cycles:
                    seen_cycles.add(frozenset(cycle))
                    found.append((locations[cycle[0]], "dependency cycle: " + " -> ".join(cycle)))
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [])
    return found
