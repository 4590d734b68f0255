"""planctl ledger: regenerate ledgers, plan views and doc blocks from plans + attempts."""

from __future__ import annotations

import typer

from planctl.cli.app import app, console, project, valid_plans
from planctl.project import Project
from planctl.safeio import project_lock


@app.command()
def ledger(
    ctx: typer.Context,
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 if any derived file is out of date."),
) -> None:
    """Regenerate ledgers/fix_plan.md, ledgers/remediation_tracker.md, docs/plans/*.md and the
    <!-- planctl:... --> blocks in docs. Running it twice changes nothing."""
    # Imported when the command runs: read-only commands (status, next, validate) start faster without it.
    from planctl.publish import stale_files

    proj = project(ctx)
    out = console()
    if check:
        stale = stale_files(proj, valid_plans(proj))
        for path in stale:
            out.print(f"out of date: {proj.display(path)}")
        if stale:
            raise typer.Exit(1)
        out.print("ledgers and views are up to date")
        return
    regenerate(proj)


def regenerate(proj: Project) -> None:
    """Rewrite the out-of-date derived files under the project lock and list them (a plan that
    does not load is reported and left out)."""
    from planctl.publish import publish

    with project_lock(proj.lock_path):
        changed = publish(proj, valid_plans(proj))
    out = console()
    for path in changed:
        out.print(f"wrote {proj.display(path)}")
    if not changed:
        out.print("ledgers and views are up to date")
