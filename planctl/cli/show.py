"""planctl show PLAN [TASK]: one plan (its markdown view) or one task in full."""

from __future__ import annotations

import typer

from planctl.cli.app import JsonOption, PlanArgument, app, console, print_json, project
from planctl.freshness import Hasher, plan_freshness
from planctl.graph import blockers, prerequisites
from planctl.store import find_plan


@app.command()
def show(
    ctx: typer.Context,
    plan: str = PlanArgument,
    task: str | None = typer.Argument(None, help="Task id; default: the whole plan."),
    as_json: bool = JsonOption,
) -> None:
    """Print a plan as markdown, or every field of one task. Done tasks whose evidence no longer
    matches their inputs are marked stale, with the files that changed."""
    # Imported when the command runs: read-only commands (status, next, validate) start faster without them.
    from planctl.records import load_records, records_path
    from planctl.views import render_plan

    proj = project(ctx)
    plan_file = find_plan(proj, plan)
    located = plan_file.locate(task) if task is not None else None  # an unknown task fails before hashing
    records = load_records(records_path(proj, plan_file.name), plan_file.plan.initiative.id)
    evidence = {f.task: f for f in plan_freshness(proj, plan_file, records, Hasher())}
    if located is None:
        if as_json:
            print_json(plan_file.plan.model_dump(mode="json") | {"evidence": [f.as_json() for f in evidence.values()]})
            return
        print(render_plan(proj, plan_file), end="")
        stale = [f for f in evidence.values() if f.status == "stale"]
        if stale:
            print("\n## Stale evidence\n")
            print("".join(f"- {f.task}: {f.describe(shown=10)}\n" for f in stale), end="")
        return
    phase, found = located
    attempts = [a for a in records.attempts if a.task == found.id]
    freshness = evidence.get(found.id)
    details = {
        "initiative": plan_file.plan.initiative.id,
        "phase": phase.id,
        **found.model_dump(mode="json", exclude_none=True),
        "waiting_for": [t.id for t in blockers(plan_file.plan, phase, found)],
        "attempts": [a.number for a in attempts],
        "evidence": freshness.as_json() if freshness else None,
    }
    if as_json:
        print_json(details)
        return
    out = console()
    out.print(f"{details['initiative']} {found.id} {found.state.value} — {found.description}")
    out.print(f"Phase {phase.id} — {phase.title}")
    if found.reason:
        out.print(f"Reason: {found.reason}")
    if found.waits_on:
        out.print(f"Waits on: {', '.join(found.waits_on)}")
    if found.guidance:
        out.print(f"Guidance: {found.guidance}")
    if freshness:
        out.print(f"Evidence: {freshness.status} — {freshness.reason}")
        for name in freshness.changed:
            out.print(f"  changed: {name}")
    needed = prerequisites(plan_file.plan, phase, found)
    if needed:
        out.print("Needs: " + ", ".join(f"{t.id} {t.state.value}" for t in needed))
    if found.run:
        out.print("Run:")
        for key, value in found.run.model_dump(mode="json", exclude_defaults=True).items():
            out.print(f"  {key}: {value}")
    for attempt in attempts:
        out.print(f"Attempt #{attempt.number} {attempt.stamp} {attempt.outcome}: {attempt.bundle}")
