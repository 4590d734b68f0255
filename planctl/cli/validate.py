"""planctl validate: check every plan and report problems as file:line:col: severity: message."""

from __future__ import annotations

import typer

from planctl.cli.app import app, project
from planctl.validate import validate_project


@app.command("validate")
def validate(
    ctx: typer.Context,
    strict: bool = typer.Option(False, "--strict", help="Fail on warnings too."),
) -> None:
    """Check schemas, task ids, dependencies and every referenced file, line range and section."""
    proj = project(ctx)
    _plan_files, diagnostics = validate_project(proj)
    for diagnostic in sorted(diagnostics, key=lambda d: (d.path, d.line, d.col)):
        print(diagnostic)
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    checked = len(proj.plan_paths())
    print(f"{checked} plan(s) checked: {errors} error(s), {warnings} warning(s)")
    if errors or (strict and warnings):
        raise typer.Exit(1)
