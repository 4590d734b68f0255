"""planctl verify [PLAN] [TASK...] [--stale]: re-run done tasks' run specs as attempts of kind verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from planctl.cli.app import AnyPlanArgument, app, console, project, selected_plans
from planctl.cli.run import attempt_each

if TYPE_CHECKING:
    from planctl.engine import RunResult


@app.command()
def verify(
    ctx: typer.Context,
    plan: str | None = AnyPlanArgument,
    tasks: list[str] = typer.Argument(None, help="Done tasks to verify; default: every done task of the plan(s)."),
    stale: bool = typer.Option(False, "--stale", help="Only the done tasks whose evidence is stale."),
    no_commit: bool = typer.Option(False, "--no-commit", help="Record the attempts but do not commit them."),
) -> None:
    """Re-run the run specs of done tasks as attempts of kind verify. A pass refreshes the evidence;
    a failure reopens the task ("regressed since attempt #N"), and is recorded and committed. A done
    task without a run spec is reported as unverifiable. Exit status: 0 when every selected task was
    re-checked and passed, 1 when one failed or is unverifiable, 130/143 stopped."""
    # Imported when the command runs: read-only commands (status, next, validate) start faster without it.
    from planctl.verify import VerifyKind, select_done_tasks

    proj = project(ctx)
    selection = select_done_tasks(proj, selected_plans(ctx, plan), tasks or [], stale)
    out = console()
    for plan_name, task_id in selection.unverifiable:
        note = " (not stale: nothing to compare)" if stale else ""
        out.print(f"{plan_name} {task_id}: unverifiable — done without a run spec{note}")
    results: list[RunResult] = []
    attempt_each(proj, selection.runs, VerifyKind(), commit=not no_commit, results=results)
    passed = sum(r.attempt.outcome == "passed" for r in results)
    summary = f"verified {len(results)} task(s): {passed} passed, {len(results) - passed} failed or stopped"
    if selection.unverifiable:
        summary += f"; {len(selection.unverifiable)} unverifiable"
    out.print(summary if results or selection.unverifiable else "nothing to verify", style="bold")
    if passed < len(results) or (selection.unverifiable and not stale):
        raise typer.Exit(1)
