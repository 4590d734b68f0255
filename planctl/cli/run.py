"""planctl run PLAN [TASK...] | --phase X | --all-ready: run tasks' commands and record attempts."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import typer

from planctl.cli.app import PlanArgument, app, console, project
from planctl.errors import PlanctlError
from planctl.graph import ready_tasks
from planctl.process import Interrupted, interruptible
from planctl.project import Project
from planctl.store import find_plan

if TYPE_CHECKING:
    from planctl.engine import AttemptKind, RunResult


@app.command()
def run(
    ctx: typer.Context,
    plan: str = PlanArgument,
    tasks: list[str] = typer.Argument(None, help="Task ids to run, in order."),
    phase: str | None = typer.Option(None, "--phase", help="Run the open runnable tasks of this phase."),
    all_ready: bool = typer.Option(False, "--all-ready", help="Run every ready runnable task, until none is left."),
    no_commit: bool = typer.Option(False, "--no-commit", help="Record the attempt but do not commit it."),
    force: bool = typer.Option(
        False, "--force", help="Run named tasks even when their prerequisites are open or they are blocked."
    ),
) -> None:
    """Run tasks' linked commands into evidence bundles, judge and record each attempt, update
    task states and ledgers, and commit. Exit status: 0 all passed, 1 a failure, 130/143 stopped."""
    modes = sum([bool(tasks), phase is not None, all_ready])
    if modes != 1:
        raise PlanctlError("name the tasks to run, or pass --phase X or --all-ready (exactly one of them)")
    proj = project(ctx)
    # Imported when the command runs: read-only commands (status, next, validate) start faster without it.
    from planctl.engine import RunKind

    results: list[RunResult] = []
    jobs = ((plan, task_id) for task_id in _queue(proj, plan, tasks, phase, results))
    attempt_each(proj, jobs, RunKind(force), commit=not no_commit, results=results)
    if not results:
        console().print("nothing to run")
    if any(r.attempt.outcome != "passed" for r in results):
        raise typer.Exit(1)


def attempt_each(
    proj: Project, jobs: Iterable[tuple[str, str]], kind: AttemptKind, *, commit: bool, results: list[RunResult]
) -> None:
    """One attempt of ``kind`` per (plan, task) job, each outcome printed and appended to ``results``
    (which ``jobs`` may read). A signal stops the queue: every attempt so far is recorded, and
    planctl exits with 130/143."""
    from planctl.engine import run_attempt

    out = console()
    try:
        with interruptible():
            for plan, task_id in jobs:
                result = run_attempt(
                    proj, plan, task_id, kind, commit=commit, say=lambda line: out.print(line, style="bold")
                )
                results.append(result)
                out.print(_outcome_line(result), style="bold")
                if result.interrupted:
                    raise result.interrupted
    except Interrupted as stop:  # between or after attempts: every attempt so far is recorded
        print(f"planctl: stopped by {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)


def _queue(proj: Project, plan: str, tasks: list[str], phase: str | None, done: list[RunResult]) -> Iterator[str]:
    """Task ids to run next: the named ones, else the ready runnable tasks (of ``phase``, or of the
    whole plan for --all-ready). The plan is re-read after each attempt, so tasks that a passing
    attempt unblocked are picked up too."""
    if tasks:
        yield from tasks
        return
    while True:
        plan_file = find_plan(proj, plan)
        if phase is not None and plan_file.plan.find_phase(phase) is None:
            raise PlanctlError(f"{plan_file.display}: unknown phase '{phase}'")
        attempted = {r.attempt.task for r in done}
        candidates = [
            t.id
            for p, t in ready_tasks(plan_file.plan)
            if t.run and t.id not in attempted and (phase is None or p.id.lower() == phase.lower())
        ]
        if not candidates:
            return
        yield candidates[0]


def _outcome_line(result: RunResult) -> str:
    attempt = result.attempt
    checks = f"{sum(c.passed for c in attempt.checks)}/{len(attempt.checks)} checks passed"
    line = f"{attempt.label} {attempt.task}: {attempt.outcome}"
    line += f" ({attempt.reason})" if attempt.reason else f" ({checks})"
    failed = [c for c in attempt.checks if not c.passed]
    line += "".join(f"\n  failed: {c.name}: {c.detail}" for c in failed)
    if result.commit:
        line += f"\ncommitted {result.commit[:10]}"
    return line
