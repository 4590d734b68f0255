"""planctl next [PLAN]: tasks whose prerequisites and dependencies are satisfied."""

from __future__ import annotations

import typer

from planctl.cli.app import AnyPlanArgument, JsonOption, app, plain_table, print_json, selected_plans
from planctl.graph import ready_tasks


@app.command("next")
def next_tasks(
    ctx: typer.Context,
    plan: str | None = AnyPlanArgument,
    as_json: bool = JsonOption,
) -> None:
    """List open and in-progress tasks whose dependencies and required phases are closed (a
    blocked task is never ready)."""
    rows = [
        {
            "initiative": p.plan.initiative.id,
            "plan": p.name,
            "phase": phase.id,
            "task": task.id,
            "state": task.state.value,
            "description": task.description,
            "runnable": task.run is not None,
        }
        for p in selected_plans(ctx, plan)
        for phase, task in ready_tasks(p.plan)
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        print("Nothing is ready.")
        return
    table = [
        [
            str(r["initiative"]),
            str(r["phase"]),
            str(r["task"]),
            str(r["state"]),
            "yes" if r["runnable"] else "",
            str(r["description"]),
        ]
        for r in rows
    ]
    print(plain_table(["Initiative", "Phase", "Task", "State", "Runnable", "Description"], table))
