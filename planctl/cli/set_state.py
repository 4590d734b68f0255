"""planctl set PLAN TASK --state D|S|open [--why TEXT]: a manual state transition, recorded."""

from __future__ import annotations

import typer

from planctl.cli.app import PlanArgument, app, console, project
from planctl.errors import PlanctlError
from planctl.records import Transition, load_records, records_path, save_records
from planctl.safeio import project_lock
from planctl.schema import TaskState
from planctl.store import read_all, save_plan, select_plan, set_task_state

STATES = {"D": TaskState.DONE, "S": TaskState.SKIPPED, "open": TaskState.OPEN}


@app.command("set")
def set_state(
    ctx: typer.Context,
    plan: str = PlanArgument,
    task: str = typer.Argument(..., help="Task id."),
    state: str = typer.Option(..., "--state", help="D (done), S (skipped) or open."),
    why: str | None = typer.Option(None, "--why", help="Reason; required for S."),
) -> None:
    """Change a task's state by hand; the plan file keeps its comments and layout."""
    if state not in STATES:
        raise PlanctlError(f"--state {state}: expected D, S or open")
    new = STATES[state]
    if new is TaskState.SKIPPED and not (why or "").strip():
        raise PlanctlError("--state S needs --why REASON")
    # Imported when the command runs: read-only commands (status, next, validate) start faster without it.
    from planctl.publish import derived_files, write_derived

    proj = project(ctx)
    with project_lock(proj.lock_path):
        # Every plan is loaded and every view rendered first, so a broken plan or template stops
        # the command before anything is written.
        plan_files = read_all(proj)
        plan_file = select_plan(proj, plan_files, plan)
        old = plan_file.task(task).state
        set_task_state(plan_file, task, new, why)
        path = records_path(proj, plan_file.name)
        records = load_records(path, plan_file.plan.initiative.id)
        records.transitions.append(Transition(task=task, before=old, after=new, why=why, by="manual"))
        views = derived_files(proj, plan_files, {plan_file.name: records})
        save_plan(plan_file)
        save_records(path, records)
        write_derived(views)
    console().print(f"{plan_file.plan.initiative.id} {task}: {old.value} -> {new.value}")
