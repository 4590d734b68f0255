"""planctl set PLAN TASK --state open|P|B|D|S [--why TEXT] [--waits-on ID]: a manual state transition, recorded."""

from __future__ import annotations

import typer

from planctl.cli.app import PlanArgument, app, console, project
from planctl.errors import PlanctlError
from planctl.safeio import project_lock
from planctl.schema import TaskState
from planctl.store import read_all, save_plan, select_plan, set_task_state

STATES = {
    "open": TaskState.OPEN,
    "P": TaskState.IN_PROGRESS,
    "B": TaskState.BLOCKED,
    "D": TaskState.DONE,
    "S": TaskState.SKIPPED,
}


@app.command("set")
def set_state(
    ctx: typer.Context,
    plan: str = PlanArgument,
    task: str = typer.Argument(..., help="Task id."),
    state: str = typer.Option(..., "--state", help="open, P (in progress), B (blocked), D (done) or S (skipped)."),
    why: str | None = typer.Option(None, "--why", help="Reason; required for B and S."),
    waits_on: list[str] = typer.Option(
        [], "--waits-on", help="For B: a task id of this plan or an initiative id it waits on (repeatable)."
    ),
) -> None:
    """Change a task's state by hand; the plan file keeps its comments and layout."""
    key = state.strip("[]").upper() if state.lower() != "open" else "open"
    if key not in STATES:
        raise PlanctlError(f"--state {state}: expected open, P, B, D or S")
    new = STATES[key]
    if new in (TaskState.SKIPPED, TaskState.BLOCKED) and not (why or "").strip():
        raise PlanctlError(f"--state {key} needs --why REASON")
    if waits_on and new is not TaskState.BLOCKED:
        raise PlanctlError("--waits-on is for blocked tasks (--state B)")
    # Imported when the command runs: read-only commands (status, next, validate) start faster without them.
    from planctl.publish import derived_files, write_derived
    from planctl.records import Transition, load_records, records_path, save_records

    proj = project(ctx)
    with project_lock(proj.lock_path):
        # Every plan is loaded and every view rendered first, so a broken plan or template stops
        # the command before anything is written.
        plan_files = read_all(proj)
        plan_file = select_plan(proj, plan_files, plan)
        old = plan_file.task(task).state
        set_task_state(plan_file, task, new, why, waits_on)
        path = records_path(proj, plan_file.name)
        records = load_records(path, plan_file.plan.initiative.id)
        records.transitions.append(Transition(task=task, before=old, after=new, why=why, by="manual"))
        views = derived_files(proj, plan_files, {plan_file.name: records})
        save_plan(plan_file)
        save_records(path, records)
        write_derived(views)
    console().print(f"{plan_file.plan.initiative.id} {task}: {old.value} -> {new.value}")
