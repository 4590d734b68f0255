"""planctl status [PLAN]: where every plan stands."""

from __future__ import annotations

from typing import Any

import typer

from planctl.cli.app import (
    AnyPlanArgument,
    JsonOption,
    app,
    plain_table,
    print_json,
    project,
    selected_plans,
    title_line,
)
from planctl.freshness import Freshness, Hasher, plan_freshness
from planctl.graph import Counts, plan_status, ready_tasks
from planctl.project import Project
from planctl.records import load_records, records_path
from planctl.schema import TaskState
from planctl.store import PlanFile

BAR_WIDTH = 20


def summary(proj: Project, plan_file: PlanFile, hasher: Hasher) -> dict[str, Any]:
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
        "status": plan_status(counts, len(ready)),
        "done": counts.done,
        "skipped": counts.skipped,
        "open": counts.open,
        "in_progress": counts.in_progress,
        "blocked": counts.blocked,
        "total": counts.total,
        "progress": round(counts.closed / counts.total, 3) if counts.total else 0.0,
        "phases": [{"id": phase.id, "title": phase.title, **vars(Counts.of(phase.tasks))} for phase in plan.phases],
        "next": [
            {"task": task.id, "phase": phase.id, "state": task.state.value, "description": task.description}
            for phase, task in ready
        ],
        "blocked_tasks": [
            {"task": task.id, "phase": phase.id, "reason": task.reason, "waits_on": task.waits_on}
            for phase, task in plan.tasks()
            if task.state is TaskState.BLOCKED
        ],
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
    """Show each plan's phases with done/skipped/open counts (and in progress/blocked where there
    are any), progress, the next ready task and every blocked task with its reason."""
    proj, hasher = project(ctx), Hasher()
    summaries = [summary(proj, p, hasher) for p in selected_plans(ctx, plan)]
    if as_json:
        print_json(summaries)
        return
    if not summaries:
        print("No plans.")
    for item in summaries:
        print(title_line(item["initiative"], f" — {item['title']}"))
        print(
            f"{progress_bar(item['progress'])} {item['done'] + item['skipped']}/{item['total']} "
            f"({item['progress']:.0%}) {item['status']}  {item['file']}"
        )
        # In progress and blocked get a column only in plans that have such tasks.
        columns = [("Done", "done"), ("Skipped", "skipped"), ("Active", "in_progress"), ("Blocked", "blocked")]
        columns = [(name, key) for name, key in columns if key in ("done", "skipped") or item[key]] + [("Open", "open")]
        rows = [[phase["id"], phase["title"], *(str(phase[key]) for _, key in columns)] for phase in item["phases"]]
        names = [name for name, _ in columns]
        print(plain_table(["Phase", "Title", *names], rows, right=tuple(names), max_width={"Title": 48}))
        nxt = item["next"][0] if item["next"] else None
        active = " (in progress)" if nxt and nxt["state"] == TaskState.IN_PROGRESS.value else ""
        print(f"Next: {nxt['task']} — {nxt['description']}{active}" if nxt else "Next: nothing ready")
        for blocked in item["blocked_tasks"]:
            waits = f" (waits on {', '.join(blocked['waits_on'])})" if blocked["waits_on"] else ""
            print(f"Blocked: {blocked['task']} — {blocked['reason']}{waits}")
        for i, stale in enumerate(item["stale"]):
            print(f"{'Stale:' if i == 0 else '':6} {stale['task']} — {Freshness(**stale).describe()}")
        if item["unverifiable"]:
            print(f"Unverifiable (done without a run spec): {', '.join(item['unverifiable'])}")
        print()
