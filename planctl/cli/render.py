"""planctl render [PLAN]: write the markdown view of each plan under docs/plans/."""

from __future__ import annotations

import typer

from planctl.cli.app import app, console, project
from planctl.publish import publish
from planctl.safeio import project_lock
from planctl.store import find_plan, read_all
from planctl.views import render_plan


@app.command()
def render(
    ctx: typer.Context,
    plan: str | None = typer.Argument(None, help="Print this plan's view instead of writing all views."),
) -> None:
    """Regenerate the markdown views (and ledgers) of all plans, or print one plan's view."""
    proj = project(ctx)
    if plan is not None:
        print(render_plan(proj, find_plan(proj, plan)), end="")
        return
    with project_lock(proj.lock_path):
        changed = publish(proj, read_all(proj))
    out = console()
    for path in changed:
        out.print(f"wrote {proj.display(path)}")
    if not changed:
        out.print("views are up to date")
