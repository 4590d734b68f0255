"""planctl import FILE.md: turn a markdown plan into a YAML plan under plans/."""

from __future__ import annotations

from pathlib import Path

import typer

from planctl.cli.app import app, console, note, project, warn
from planctl.errors import PlanctlError
from planctl.safeio import atomic_write_text, project_lock
from planctl.store import new_plan_text

HEADER = (
    "yaml-language-server: $schema=../schemas/plan.schema.json\n"
    "Imported from {source} by `planctl import`. Edit freely: planctl keeps comments and layout\n"
    "when it changes a task's state."
)


@app.command("import")
def import_plan(
    ctx: typer.Context,
    markdown: Path = typer.Argument(..., help="Markdown plan to import.", dir_okay=False),
    out: Path | None = typer.Option(None, "--out", help="YAML file to write; default plans/<name>.yaml."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing plan file."),
) -> None:
    """Import a markdown plan; what cannot be mapped is kept as notes and listed as warnings."""
    # Imported when the command runs: read-only commands (status, next, validate) start faster without it.
    from planctl.importer import import_markdown

    try:
        text = markdown.read_text(encoding="utf-8")
    except OSError as err:
        raise PlanctlError(f"{markdown}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise PlanctlError(f"{markdown}: not UTF-8 text: byte {err.start} cannot be decoded") from None
    result = import_markdown(text, markdown.name)
    proj = project(ctx)
    target = out or proj.plans_dir / f"{markdown.stem}.yaml"
    if target.exists() and not force:
        raise PlanctlError(f"{proj.display(target)} exists; pass --force to overwrite it")
    with project_lock(proj.lock_path):  # a run in progress re-reads plans under this lock
        try:
            atomic_write_text(target, new_plan_text(result.plan, HEADER.format(source=markdown.name)))
        except OSError as err:
            raise PlanctlError(f"{proj.display(target)}: cannot write: {err.strerror}") from None
    for message in result.warnings:
        warn(message)
    for message in result.inferred:
        note(f"inferred {message}")
    phases = len(result.plan.phases)
    tasks = sum(len(p.tasks) for p in result.plan.phases)
    console().print(
        f"wrote {proj.display(target)}: {result.plan.initiative.id}, {phases} phases, {tasks} tasks, "
        f"{len(result.warnings)} warning(s)"
    )
