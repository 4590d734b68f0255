"""planctl report [--out DIR]: every plan as a static HTML site."""

from __future__ import annotations

from pathlib import Path

import typer

from planctl.cli.app import app, console, project
from planctl.errors import PlanctlError

DEFAULT_OUT = Path("reports") / "site"


@app.command()
def report(
    ctx: typer.Context,
    out: Path | None = typer.Option(
        None, "--out", help="Folder to write the site into; default reports/site.", file_okay=False
    ),
) -> None:
    """Write a static HTML report: an overview of every plan (progress, phases, ready/blocked/stale
    counts) and per plan its dependency graph, tasks and evidence, attempts timeline and metric
    plots, with each attempt's summary and log inside the site. No server, no JavaScript."""
    # Imported when the command runs: read-only commands (status, next, validate) start faster without it.
    from planctl.report import build_report

    proj = project(ctx)
    target = out if out is not None else proj.root / DEFAULT_OUT
    try:
        built = build_report(proj, target)
    except OSError as err:
        raise PlanctlError(f"--out {target}: cannot write: {err.strerror or err}") from None
    removed = f", {built.removed} old file(s) removed" if built.removed else ""
    console().print(
        f"wrote {proj.display(target / 'index.html')}: {built.plans} plan(s), {built.attempts} attempt(s), "
        f"{built.plots} metric plot(s){removed}"
    )
