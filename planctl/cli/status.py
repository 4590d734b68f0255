"""planctl status [PLAN]: where every plan stands."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from planctl.cli.app import AnyPlanArgument, JsonOption, app, console, print_json, project, selected_plans
from planctl.freshness import Freshness, Hasher, plan_freshness
from planctl.graph import Counts, plan_status, ready_tasks
from planctl.project import Project
from planctl.records import load_records, records_path
from planctl.store import PlanFile

BAR_WIDTH = 20


def summary(proj: Project, plan_file: PlanFile, hasher: Hasher) -> dict:
    """Machine-readable status of one plan (the --json form, also used by other commands)."""
    plan = plan_file.plan
    counts = Counts.of(task for _, task in plan.tasks())
    ready = ready_tasks(plan)
    records = load_records(records_path(proj, plan_file.name), plan.initiative.id)
    evidence = plan_freshness(proj, plan_file, records, hasher)
    return {
        "plan": plan_file.name,
        "file": plan_file.display,
        "initiative": plan.initiative.id,
        "title": plan.initiative.title,
        "status": plan_status(counts),
        "done": counts.done,
        "skipped": counts.skipped,
        "open": counts.open,
        "total": counts.total,
        "progress": round(counts.closed / counts.total, 3) if counts.total else 0.0,
        "phases": [{"id": phase.id, "title": phase.title, **vars(Counts.of(phase.tasks))} for phase in plan.phases],
        "next": [{"task": task.id, "phase": phase.id, "description": task.description} for phase, task in ready],
        "stale": [f.as_json() for f in evidence if f.status == "stale"],
        "unverifiable": [f.task for f in evidence if f.status == "unverifiable"],
    }


def progress_bar(fraction: float) -> str:
    filled = round(fraction * BAR_WIDTH)
    return "█" * filled + "░" * (BAR_WIDTH - filled)


@app.command()
def status(
    ctx: typer.Context,
    plan: str | None = AnyPlanArgument,
    as_json: bool = JsonOption,
) -> None:
    """Show each plan's phases with done/skipped/open counts, progress and the next ready task."""
    proj, hasher = project(ctx), Hasher()
    summaries = [summary(proj, p, hasher) for p in selected_plans(ctx, plan)]
    if as_json:
        print_json(summaries)
        return
    out = console()
    if not summaries:
        out.print("No plans.")
    for item in summaries:
        title = Text.assemble((item["initiative"], "bold"), f" — {item['title']}")
        title.truncate(out.width, overflow="ellipsis")
        out.print(title)
        out.print(
            f"{progress_bar(item['progress'])} {item['done'] + item['skipped']}/{item['total']} "
            f"({item['progress']:.0%}) {item['status']}  {item['file']}"
        )
        table = Table(box=None, pad_edge=False, show_edge=False)
        table.add_column("Phase")
        table.add_column("Title", overflow="ellipsis", no_wrap=True, max_width=48)
        for column in ("Done", "Skipped", "Open"):
            table.add_column(column, justify="right")
        for phase in item["phases"]:
            table.add_row(phase["id"], phase["title"], str(phase["done"]), str(phase["skipped"]), str(phase["open"]))
        out.print(table)
        nxt = item["next"][0] if item["next"] else None
        out.print(f"Next: {nxt['task']} — {nxt['description']}" if nxt else "Next: nothing ready")
        for i, stale in enumerate(item["stale"]):
            out.print(f"{'Stale:' if i == 0 else '':6} {stale['task']} — {Freshness(**stale).describe()}")
        if item["unverifiable"]:
            out.print(f"Unverifiable (done without a run spec): {', '.join(item['unverifiable'])}")
        out.print()
