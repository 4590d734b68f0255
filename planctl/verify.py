"""Re-verifying done tasks: their run specs run again as attempts of kind ``verify``.

A pass refreshes the evidence (the new attempt, with its inputs, is what the done state stands on).
A failure reopens the task, with the reason "regressed since attempt #N", N being the passing attempt
that the done state stood on; the attempt, the transition and the ledgers are recorded and committed
as for any attempt. A done task without a run spec cannot be re-checked: it is *unverifiable*, and
never counts as passing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planctl.engine import RunSpecSteps, StateMove, require_run_spec
from planctl.errors import PlanctlError
from planctl.freshness import Hasher, last_pass, plan_freshness
from planctl.project import Project
from planctl.records import Attempt, AttemptKindName, Records, load_records, records_path
from planctl.schema import Phase, Task, TaskState
from planctl.store import PlanFile


@dataclass(frozen=True)
class VerifyKind(RunSpecSteps):
    """A done task with a run spec; a failure reopens it."""

    name: AttemptKindName = "verify"

    def admit(
        self, project: Project, plan_file: PlanFile, phase: Phase, task: Task, records: Records
    ) -> dict[str, Any]:
        if task.state is not TaskState.DONE:
            raise PlanctlError(
                f"{plan_file.display}: task {task.id} is {task.state.value}, not done: "
                "verify re-checks done tasks (planctl run proves open ones)"
            )
        require_run_spec(project, plan_file, task)
        proof = last_pass(records, task.id)
        return {"verifies": proof.number if proof else None}

    def settle(self, attempt: Attempt, before: TaskState) -> StateMove | None:
        if attempt.outcome != "failed" or before is not TaskState.DONE:
            return None  # a pass refreshes the evidence; an interrupted check proves nothing either way
        attempt.reason = (
            f"regressed since attempt #{attempt.verifies}"
            if attempt.verifies is not None
            else "regressed since it was marked done (no passing attempt on record)"
        )
        return StateMove(TaskState.OPEN, attempt.reason)


@dataclass
class Selection:
    """What ``planctl verify`` will do: (plan, task) pairs to re-run, and the done tasks among those
    considered that nothing can re-check (no run spec; never stale, so never among --stale runs)."""

    runs: list[tuple[str, str]] = field(default_factory=list)
    unverifiable: list[tuple[str, str]] = field(default_factory=list)


def select_done_tasks(project: Project, plan_files: list[PlanFile], task_ids: list[str], stale_only: bool) -> Selection:
    """The done tasks of ``plan_files`` (or the named ones, which must be done), in plan order;
    with ``stale_only``, those whose evidence is stale. Refuses before anything runs."""
    selection = Selection()
    hasher = Hasher()
    for plan_file in plan_files:
        if task_ids:
            tasks = [plan_file.task(task_id) for task_id in task_ids]
            for task in tasks:
                if task.state is not TaskState.DONE:
                    raise PlanctlError(
                        f"{plan_file.display}: task {task.id} is {task.state.value}, not done: "
                        "verify re-checks done tasks (planctl run proves open ones)"
                    )
        else:
            tasks = [task for _, task in plan_file.plan.tasks() if task.state is TaskState.DONE]
        selection.unverifiable += [(plan_file.name, task.id) for task in tasks if task.run is None]
        if stale_only:
            records = load_records(records_path(project, plan_file.name), plan_file.plan.initiative.id)
            stale = {f.task for f in plan_freshness(project, plan_file, records, hasher) if f.status == "stale"}
            tasks = [task for task in tasks if task.id in stale]
        selection.runs += [(plan_file.name, task.id) for task in tasks if task.run is not None]
    return selection
