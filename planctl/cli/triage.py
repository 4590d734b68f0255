"""planctl triage run | show | link: full-suite runs in chunks, their failure clusters, and the plans
that fix them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from planctl.cli.app import JsonOption, app, console, print_json, project
from planctl.errors import PlanctlError
from planctl.process import Interrupted, interruptible
from planctl.project import Project

if TYPE_CHECKING:
    from planctl.triage.view import ClusterRow, TriageView

# The triage modules are imported when a command runs: every other command starts faster without them.

triage_app = typer.Typer(
    help="Run the suite in chunks, cluster its failures, link clusters to plans.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(triage_app, name="triage")


@triage_app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(
    ctx: typer.Context,
    pytest_args: list[str] = typer.Argument(
        None, help="pytest arguments (after --, e.g. -- -m 'not slow' tests/); default: the plan's triage.args."
    ),
    chunks: int | None = typer.Option(None, "--chunks", min=1, help="Split into N chunks balanced by past durations."),
    by: str | None = typer.Option(None, "--by", help="'file': one chunk per test file."),
    jobs: int | None = typer.Option(None, "--jobs", min=1, help="Chunks run at once."),
    timeout_per_chunk: float | None = typer.Option(
        None, "--timeout-per-chunk", min=1, help="Seconds before a chunk is stopped."
    ),
    no_commit: bool = typer.Option(False, "--no-commit", help="Record the run but do not commit it."),
) -> None:
    """Collect the suite with pytest, run it in chunks (each its own pytest process under the plan's
    guard environment), cluster the failures, record the run and regenerate the remediation tracker.
    Exit status: 0 every test passed, 1 failures or incomplete chunks, 130/143 stopped."""
    from planctl.triage.progress import RunProgress
    from planctl.triage.runner import TriageOptions, run_triage

    if by is not None and by != "file":
        raise PlanctlError(f"--by {by}: the only grouping is 'file'")
    if by is not None and chunks is not None:
        raise PlanctlError("--chunks and --by file exclude each other")
    options = TriageOptions(
        args=list(pytest_args) + list(ctx.args) if (pytest_args or ctx.args) else None,
        chunks=chunks,
        by_file=by == "file",
        jobs=jobs,
        timeout_per_chunk=timeout_per_chunk,
    )
    proj = project(ctx)
    out = console()
    try:
        with interruptible():
            result = run_triage(
                proj,
                options,
                commit=not no_commit,
                progress=RunProgress(out),
                say=lambda line: out.print(line, style="bold"),
            )
            attempt = result.attempt
            line = f"triage #{attempt.number}: {attempt.outcome}"
            line += f" ({attempt.reason})" if attempt.reason else ""
            if attempt.triage is not None:
                line += f" — {attempt.triage.totals.line()}"
            line += "".join(f"\n  failed: {c.name}: {c.detail}" for c in attempt.checks if not c.passed)
            line += f"\ncommitted {result.commit[:10]}" if result.commit else ""
            changes = attempt.triage.trailers()["Clusters"] if attempt.triage else None
            line += f"\nclusters: {changes}" if changes else ""
            out.print(line, style="bold")
            if result.interrupted:
                raise result.interrupted
    except Interrupted as stop:  # every chunk that finished is recorded
        print(f"planctl: stopped by {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    if attempt.outcome != "passed":
        raise typer.Exit(1)


@triage_app.command("show")
def show(
    ctx: typer.Context,
    cluster: str | None = typer.Argument(None, help="Cluster id (C3); default: every cluster."),
    as_json: bool = JsonOption,
) -> None:
    """The latest run compared with the one before, and the clusters; or one cluster in full."""
    from planctl.triage.view import KEYS

    view = _view(project(ctx))
    if cluster is not None:
        row = view.row(cluster)
        if as_json:
            print_json(row.as_json())
        else:
            _print_cluster(row)
        return
    if as_json:
        print_json(_as_json(view))
        return
    out = console()
    latest, previous, delta = view.latest, view.previous, view.delta
    if latest is None or latest.triage is None:
        out.print(f"{view.entry.plan.initiative.id}: no triage run recorded yet (planctl triage run)")
    else:
        totals = latest.triage.totals
        counts = ", ".join(
            f"{getattr(totals, k)} {k.replace('_', ' ')}" + (f" ({delta[k]:+d})" if previous and delta[k] else "")
            for k in KEYS
            if getattr(totals, k) or delta.get(k)
        )
        out.print(
            f"{view.entry.plan.initiative.id}: triage #{latest.number} ({latest.stamp}) {latest.outcome}: {counts}"
        )
        out.print(f"  bundle {latest.bundle}")
        if previous is not None:
            changes = "; ".join(f"{event} {', '.join(ids) or 'none'}" for event, ids in view.changes.items())
            out.print(f"compared with #{previous.number} ({previous.stamp}): {changes}")
    if not view.clusters:
        out.print("No failure clusters.")
        return
    rows = [("Cluster", "Status", "Failing", "First", "Last", "Plan", "Signature")]
    for row in view.clusters:
        first, last = row.first_seen, row.last_seen
        historical = "historical" if row.cluster.origin else "—"
        rows.append(
            (
                row.id,
                row.cluster.status,
                f"{len(row.cluster.open_tests)}/{len(row.cluster.tests)}",
                f"#{first.attempt}" if first else historical,
                f"#{last.attempt}" if last else historical,
                ", ".join(f"{e.plan.initiative.id} ({e.counts.closed}/{e.counts.total})" for e in row.plans) or "—",
                row.signature,
            )
        )
    # Plain aligned columns: a signature is read whole, never wrapped to the terminal's width.
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        out.print("  ".join(cell.ljust(width) for cell, width in zip(r, widths)) + "  " + r[-1])
    for entry, cluster_id in view.dangling:
        out.print(f"note: {entry.plan.initiative.id} names {cluster_id}, which the triage records do not know")


@triage_app.command("link")
def link(
    ctx: typer.Context,
    cluster: str = typer.Argument(..., help="Cluster id, e.g. C3."),
    plan: str = typer.Argument(..., help="Plan file name or initiative id of the plan that fixes it."),
    task: str | None = typer.Argument(None, help="Task whose pytest run must show the cluster passing."),
) -> None:
    """Tie a cluster to the plan that fixes it (the plan's `cluster` key) and, with TASK, make the
    task's run expect every test of the cluster to pass."""
    from planctl.triage.link import link_cluster

    plan_file, changed = link_cluster(project(ctx), cluster, plan, task)
    target = plan_file.plan.initiative.id + (f" {task}" if task else "")
    console().print(
        f"{cluster.upper()} {'linked to' if changed else 'was already linked to'} {target} ({plan_file.display})"
    )


def _view(proj: Project) -> TriageView:
    from planctl.ledger import entries
    from planctl.store import read_all
    from planctl.triage.view import triage_view

    view = triage_view(entries(proj, read_all(proj), {}))
    if view is None:
        raise PlanctlError("no plan has a `triage:` section (see docs/planctl.md, Triage)")
    return view


def _print_cluster(row: ClusterRow) -> None:
    out = console()
    cluster = row.cluster
    out.print(f"{cluster.id} {cluster.status}: {row.signature}")
    if cluster.origin:
        out.print(f"historical: {cluster.origin}")
    if cluster.example:
        out.print(f"example: {cluster.example}")
    out.print(f"tests ({len(cluster.open_tests)} of {len(cluster.tests)} failing):")
    for test in cluster.tests:
        out.print(f"  {test}" + ("  (passing)" if test in cluster.passing else ""))
    for entry in row.plans:
        out.print(
            f"plan: {entry.plan.initiative.id} {entry.status}, "
            f"{entry.counts.closed}/{entry.counts.total} tasks ({entry.file})"
        )
    for entry, task in row.tasks:
        out.print(f"proven by: {entry.plan.initiative.id} {task.id} {task.state.value}")
    for event in cluster.history:
        evidence = ", ".join(event.evidence)
        out.print(
            f"#{event.attempt} {event.stamp} {event.event}"
            + (f", {event.tests} failing" if event.tests else "")
            + f": {evidence}"
        )


def _as_json(view: TriageView) -> dict[str, Any]:
    from planctl.triage.clusters import comparison

    clusters = [r.cluster for r in view.clusters]
    return {
        "initiative": view.entry.plan.initiative.id,
        "runs": [
            {
                "attempt": a.number,
                "stamp": a.stamp,
                "outcome": a.outcome,
                "bundle": a.bundle,
                **(a.triage.model_dump(mode="json", include={"totals", "compared_with"}) if a.triage else {}),
                "clusters": comparison(clusters, a.number),
            }
            for a in view.runs
        ],
        "clusters": [row.as_json() for row in view.clusters],
        "dangling": [{"initiative": e.plan.initiative.id, "cluster": c} for e, c in view.dangling],
    }
