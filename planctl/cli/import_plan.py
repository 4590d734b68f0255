"""planctl import FILE.md | DIR/: turn markdown plans into YAML plans under plans/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from planctl.cli.app import app, console, note, project, warn
from planctl.errors import PlanctlError
from planctl.project import Project
from planctl.safeio import atomic_write_text, project_lock
from planctl.store import inspect_text, new_plan_text, read_valid

HEADER = (
    "yaml-language-server: $schema=../schemas/plan.schema.json\n"
    "Imported from {source} by `planctl import`. Edit freely: planctl keeps comments and layout\n"
    "when it changes a task's state."
)


@dataclass
class _Outcome:
    source: Path
    target: Path
    text: str = ""
    summary: str = ""
    error: str | None = None
    counts: tuple[int, int, int, int] = (0, 0, 0, 0)  # phases, tasks, notes, warnings


@app.command("import")
def import_plan(
    ctx: typer.Context,
    markdown: Path = typer.Argument(..., help="Markdown plan, or a folder of them (searched recursively)."),
    out: Path | None = typer.Option(None, "--out", help="YAML file to write (one plan); default plans/<name>.yaml."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing plan files."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be imported; write nothing."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="For a folder: also list each file's warnings."),
) -> None:
    """Import markdown plans. Every task row and note is kept (render gives them back); what could
    not be mapped is kept as notes. A folder gets one summary line per file and a total; a file that
    fails writes nothing, and the command then exits 1."""
    from planctl.importer import import_markdown  # markdown-it is only needed here

    proj = project(ctx)
    if markdown.is_dir():
        if out is not None:
            raise PlanctlError("--out names one file; it cannot be used with a folder")
        sources = sorted(p for p in markdown.rglob("*") if p.suffix.lower() in (".md", ".markdown") and p.is_file())
        if not sources:
            raise PlanctlError(f"{markdown}: no markdown files found")
    elif markdown.exists():
        sources = [markdown]
    else:
        raise PlanctlError(f"{markdown}: no such file or folder")
    targets = _targets(proj, markdown, sources, out)
    outcomes = []
    taken = _initiatives_in_use(proj, set(targets.values()))
    for source in sources:
        outcome = _Outcome(source, targets[source])
        outcomes.append(outcome)
        try:
            text = _read(source)
            result = import_markdown(text, source.name)
            plan = result.plan
            if plan.initiative.id in taken:
                renamed = _free_id(plan.initiative.id, taken)
                result.warnings.append(
                    f"{source.name}: initiative {plan.initiative.id} is already used by {taken[plan.initiative.id]}; "
                    f"imported as {renamed}"
                )
                plan.initiative.id = renamed
            if outcome.target.exists() and not force and not dry_run:
                raise PlanctlError(f"{proj.display(outcome.target)} exists; pass --force to overwrite it")
            outcome.text = new_plan_text(plan, HEADER.format(source=source.name))
            problems = inspect_text(proj, outcome.target, outcome.text)[1]
            if problems:  # import never writes a plan that validate would reject
                raise PlanctlError(f"{source.name}: cannot import: the plan would not validate: {problems[0].message}")
            taken[plan.initiative.id] = source.name
        except PlanctlError as err:
            outcome.error = str(err)
            continue
        tasks = sum(len(p.tasks) for p in plan.phases)
        outcome.summary = (
            f"{plan.initiative.id}, {len(plan.phases)} phases, {tasks} tasks, {len(result.notes)} notes, "
            f"{len(result.warnings)} warnings"
        )
        if len(sources) == 1 or verbose:
            for message in result.warnings:
                warn(message)
            for message in result.notes:
                note(message)
            for message in result.inferred:
                note(f"inferred {message}")
        outcome.counts = (len(plan.phases), tasks, len(result.notes), len(result.warnings))
    if not dry_run:
        written = [o for o in outcomes if o.error is None]
        with project_lock(proj.lock_path):  # a run in progress re-reads plans under this lock
            for outcome in written:
                try:
                    atomic_write_text(outcome.target, outcome.text)
                except OSError as err:
                    outcome.error = f"{proj.display(outcome.target)}: cannot write: {err.strerror}"
    _report(proj, outcomes, dry_run, single=not markdown.is_dir())


def _read(source: Path) -> str:
    try:
        return source.read_text(encoding="utf-8")
    except OSError as err:
        raise PlanctlError(f"{source}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise PlanctlError(f"{source}: not UTF-8 text: byte {err.start} cannot be decoded") from None


def _targets(proj: Project, folder: Path, sources: list[Path], out: Path | None) -> dict[Path, Path]:
    """plans/<stem>.yaml for each source; stems that repeat (active/x.md, archive/x.md) get
    their folder names in front."""
    if out is not None:
        return {sources[0]: out}
    stems = [s.stem for s in sources]
    targets = {}
    for source in sources:
        name = source.stem
        if stems.count(name) > 1 and folder.is_dir():
            name = "-".join(source.relative_to(folder).with_suffix("").parts)
        targets[source] = proj.plans_dir / f"{name}.yaml"
    return targets


def _initiatives_in_use(proj: Project, replaced: set[Path]) -> dict[str, str]:
    """Initiative ids of the plans already in plans/, except the files this import writes (it
    replaces them with --force, and refuses otherwise)."""
    return {p.plan.initiative.id: p.display for p in read_valid(proj)[0] if p.path not in replaced}


def _free_id(initiative: str, taken: dict[str, str]) -> str:
    n = 2
    while f"{initiative}-{n}" in taken:
        n += 1
    return f"{initiative}-{n}"


def _report(proj: Project, outcomes: list[_Outcome], dry_run: bool, single: bool) -> None:
    out = console()
    failed = [o.error for o in outcomes if o.error]
    verb = "would write" if dry_run else "wrote"
    if single and not failed:
        outcome = outcomes[0]
        out.print(f"{verb} {proj.display(outcome.target)}: {outcome.summary}")
        return
    if single:
        raise PlanctlError(failed[0])
    width = max(len(str(o.source.name)) for o in outcomes)
    for outcome in outcomes:
        name = outcome.source.name.ljust(width)
        if outcome.error:
            out.print(f"{name}  error: {outcome.error}")
        else:
            out.print(f"{name}  {verb} {proj.display(outcome.target)}: {outcome.summary}")
    imported = [o for o in outcomes if not o.error]
    phases, tasks, notes, warnings = (sum(o.counts[k] for o in imported) for k in range(4))
    out.print(
        f"total: {len(imported)} of {len(outcomes)} files imported{' (dry run: nothing written)' if dry_run else ''}, "
        f"{phases} phases, {tasks} tasks, {notes} notes, {warnings} warnings; {len(failed)} failed"
    )
    if failed:
        raise typer.Exit(1)
