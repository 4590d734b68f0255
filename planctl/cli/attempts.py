"""planctl attempts [PLAN]: the recorded attempts of every plan, or one."""

from __future__ import annotations

import typer

from planctl.cli.app import AnyPlanArgument, JsonOption, app, console, print_json, project, selected_plans


@app.command()
def attempts(ctx: typer.Context, plan: str | None = AnyPlanArgument, as_json: bool = JsonOption) -> None:
    """List attempts: number, task (and kind, for verify attempts), stamp, outcome, exit code, checks and bundle."""
    from planctl.records import load_records, records_path  # read-only commands start faster without it

    proj = project(ctx)
    rows = [
        (plan_file.plan.initiative.id, attempt)
        for plan_file in selected_plans(ctx, plan)
        for attempt in load_records(records_path(proj, plan_file.name), plan_file.plan.initiative.id).attempts
    ]
    if as_json:
        print_json([{"initiative": i, **a.model_dump(mode="json", exclude_none=True)} for i, a in rows])
        return
    if not rows:
        console().print("No attempts recorded.")
        return
    from rich.table import Table  # only this command draws a rich table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("Initiative", "#", "Task", "Stamp", "Outcome", "Exit", "Checks", "Bundle"):
        table.add_column(column, justify="right" if column in ("#", "Exit") else "left")
    for initiative, a in rows:
        checks = f"{sum(c.passed for c in a.checks)}/{len(a.checks)}"
        exit_code = "" if a.exit_code is None else str(a.exit_code)
        table.add_row(
            initiative,
            str(a.number),
            a.task if a.kind == "run" else f"{a.task} ({a.kind})",
            a.stamp,
            a.outcome + (f" ({a.reason})" if a.reason else ""),
            exit_code,
            checks,
            a.bundle,
        )
    console().print(table)
