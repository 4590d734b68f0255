"""What a plan's structure implies: progress counts, readiness, and structural mistakes.

A task is *ready* when it is open or in progress, every task in ``depends_on`` is closed (done or
skipped), and every task of each phase its phase ``requires`` is closed. A blocked task is never ready.

Every question is answered from one index of the plan built in a single pass (:class:`Graph`), and
every walk is iterative: a 10,000-task dependency chain costs time in proportion to its size and
no stack depth. A phase's ``requires`` is one edge to that phase, not one edge per task in it.
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
    in_progress: int = 0
    blocked: int = 0

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.open + self.in_progress + self.blocked

    @property
    def closed(self) -> int:
        return self.done + self.skipped

    @classmethod
    def of(cls, tasks: Iterable[Task]) -> Counts:
        tally = Counter(task.state for task in tasks)
        return cls(
            tally[TaskState.DONE],
            tally[TaskState.SKIPPED],
            tally[TaskState.OPEN],
            tally[TaskState.IN_PROGRESS],
            tally[TaskState.BLOCKED],
        )


STATUSES = ("done", "in progress", "blocked", "not started")


def plan_status(counts: Counts, ready: int = 1) -> str:
    """done: every task closed; blocked: nothing is ready and a task is blocked; in progress:
    something is closed or under way; else not started."""
    if counts.total and counts.closed == counts.total:
        return "done"
    if counts.blocked and not ready:
        return "blocked"
    return "in progress" if counts.closed or counts.in_progress else "not started"


class Graph:
    """One plan's tasks and phases indexed by id, with what is still open in each phase."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.position: dict[str, int] = {}  # task id -> its place in plan order (first occurrence)
        self.tasks: dict[str, Task] = {}
        self.phases: dict[str, Phase] = {}
        self.open_in_phase: dict[str, int] = Counter()
        for phase in plan.phases:
            self.phases.setdefault(phase.id, phase)
            for task in phase.tasks:
                self.position.setdefault(task.id, len(self.position))
                self.tasks.setdefault(task.id, task)
                if not task.state.closed:
                    self.open_in_phase[phase.id] += 1
        self.phase_order = {phase_id: i for i, phase_id in enumerate(self.phases)}

    def required_phases(self, phase: Phase) -> list[Phase]:
        known = {r for r in phase.requires if r in self.phases}
        return sorted((self.phases[r] for r in known), key=lambda p: self.phase_order[p.id])

    def dependencies(self, task: Task) -> list[Task]:
        known = {d for d in task.depends_on if d in self.tasks}
        return sorted((self.tasks[d] for d in known), key=lambda t: self.position[t.id])

    def prerequisites(self, phase: Phase, task: Task) -> list[Task]:
        """Every task that must be closed before ``task`` can start, in plan order per kind."""
        return [t for p in self.required_phases(phase) for t in p.tasks] + self.dependencies(task)

    def blockers(self, phase: Phase, task: Task) -> list[Task]:
        return [t for t in self.prerequisites(phase, task) if not t.state.closed]

    def is_ready(self, phase: Phase, task: Task) -> bool:
        if not task.state.workable:  # a blocked task is never ready
            return False
        if any(self.open_in_phase[r] for r in phase.requires if r in self.phases):
            return False
        return all(self.tasks[d].state.closed for d in task.depends_on if d in self.tasks)


def prerequisites(plan: Plan, phase: Phase, task: Task) -> list[Task]:
    """Every task that must be closed before ``task`` can start."""
    return Graph(plan).prerequisites(phase, task)


def blockers(plan: Plan, phase: Phase, task: Task) -> list[Task]:
    return Graph(plan).blockers(phase, task)


def ready_tasks(plan: Plan) -> list[tuple[Phase, Task]]:
    graph = Graph(plan)
    return [(phase, task) for phase, task in plan.tasks() if graph.is_ready(phase, task)]


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


# Nodes of the dependency graph: a task id, or ("phase", id). A task points at the phases its
# phase requires and at the tasks it depends on; a phase points at its own tasks.
_Node = str | tuple[str, str]


def _cycles(plan: Plan) -> list[tuple[Loc, str]]:
    locations: dict[str, Loc] = {}
    successors: dict[_Node, list[_Node]] = {}
    phase_ids = {phase.id for phase in plan.phases}
    for i, phase in enumerate(plan.phases):
        required: list[_Node] = [("phase", r) for r in dict.fromkeys(phase.requires) if r in phase_ids]
        successors.setdefault(("phase", phase.id), []).extend(task.id for task in phase.tasks)
        for j, task in enumerate(phase.tasks):
            locations[task.id] = ("phases", i, "tasks", j, "depends_on")
            successors.setdefault(task.id, required + list(dict.fromkeys(task.depends_on)))
    found: list[tuple[Loc, str]] = []
    seen_cycles: set[frozenset[str]] = set()
    finished: set[_Node] = set()
    for root in locations:
        if root in finished:
            continue
        path: list[_Node] = [root]
        on_path: dict[_Node, int] = {root: 0}
        pending = [iter(successors[root])]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:  # every successor of the node on top is explored
                done = path.pop()
                del on_path[done]
                finished.add(done)
                pending.pop()
            elif nxt in on_path:
                cycle = [node for node in path[on_path[nxt] :] if isinstance(node, str)]
                if frozenset(cycle) not in seen_cycles:
                    seen_cycles.add(frozenset(cycle))
                    found.append((locations[cycle[0]], "dependency cycle: " + " -> ".join([*cycle, cycle[0]])))
            elif nxt not in finished and nxt in successors:  # unknown ids are reported elsewhere
                on_path[nxt] = len(path)
                path.append(nxt)
                pending.append(iter(successors[nxt]))
    return found
