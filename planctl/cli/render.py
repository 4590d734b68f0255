"""planctl render [PLAN]: write the markdown view of each plan under docs/plans/."""

from __future__ import annotations

import typer

from planctl.cli.app import app, project
from planctl.cli.ledger import regenerate
from planctl.store import find_plan


@app.command()
def render(
    ctx: typer.Context,
    plan: str | None = typer.Argument(None, help="Print this plan's view instead of writing all views."),
) -> None:
    """Regenerate the markdown views of all plans (with the ledgers), or print one plan's view."""
    # Imported when the command runs: read-only commands (status, next, validate) start faster without it.
    from planctl.views import render_plan

    proj = project(ctx)
    if plan is not None:
        print(render_plan(proj, find_plan(proj, plan)), end="")
        return
    regenerate(proj)
