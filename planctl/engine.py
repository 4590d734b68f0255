"""Run one task: reserve an attempt, run its command into an evidence bundle, judge the outcome,
record it, move the task's state, regenerate the views and commit.

Concurrency and crashes: the two read-modify-write steps (reserving attempt #N, then recording
its outcome) each run under the project lock with SIGINT/SIGTERM deferred; the command itself runs
outside the lock, so runs overlap. The attempt record is written before the plan changes, and a
run killed outright leaves a ``running`` record that the next run marks ``interrupted``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from planctl import gitmeta
from planctl.bundle import (
    Bundle,
    collect_artifacts,
    commands_text,
    create_bundle,
    environment_snapshot,
    junit_counts,
    listing,
    write_json,
)
from planctl.confine import expand
from planctl.errors import PlanctlError
from planctl.expect import RunFacts, judge
from planctl.graph import blockers
from planctl.process import Interrupted, run_command, signals_deferred
from planctl.project import Project
from planctl.publish import derived_files, write_derived
from planctl.records import (
    Attempt,
    Check,
    Records,
    Transition,
    load_records,
    records_path,
    save_records,
    utc_now,
)
from planctl.safeio import atomic_write_text, project_lock
from planctl.schema import Phase, Task, TaskState
from planctl.store import PlanFile, read_all, save_plan, select_plan, set_task_state
from planctl.views import render_template

if TYPE_CHECKING:
    from git import Repo

_PYTEST = re.compile(r"\bpytest\b")


@dataclass
class RunResult:
    attempt: Attempt
    commit: str | None
    interrupted: Interrupted | None


@dataclass(frozen=True)
class _Reservation:
    plan_file: PlanFile
    phase: Phase
    task: Task
    attempt: Attempt
    bundle: Bundle
    changed: list[Path]


def run_task(
    project: Project, plan_name: str, task_id: str, *, commit: bool, force: bool, say: Callable[[str], None]
) -> RunResult:
    repo = gitmeta.open_repo(project.root)
    reservation: _Reservation | None = None
    interrupted = None
    try:
        with signals_deferred():  # a signal during the reservation lands once attempt #N exists
            reservation = _reserve(project, plan_name, task_id, force, repo)
        say(
            f"{reservation.plan_file.plan.initiative.id} {task_id}: attempt #{reservation.attempt.number}, "
            f"bundle {project.display(reservation.bundle.path)}"
        )
        _execute(project, reservation)
    except Interrupted as signal_:
        assert reservation is not None  # signals are deferred until the reservation is made
        interrupted = signal_
        reservation.attempt.outcome, reservation.attempt.reason = "interrupted", f"{signal_} received"
    except PlanctlError as err:
        if reservation is None:
            raise  # refused before anything was reserved
        _fail(reservation.attempt, "run", err)  # e.g. a broken template or its missing data
    attempt = reservation.attempt
    attempt.finished = attempt.finished or utc_now()
    commit_id = None
    try:
        with signals_deferred():  # recording is never cut short; a signal meanwhile lands after it
            _write_summary(project, reservation)
            commit_id = _record(project, reservation, repo if commit else None)
    except Interrupted as signal_:
        interrupted = interrupted or signal_
    if commit and repo is None:
        say(f"warning: {project.root} is not inside a git repository; the attempt is recorded but not committed")
    return RunResult(attempt, commit_id, interrupted)


def _fail(attempt: Attempt, step: str, err: PlanctlError) -> None:
    attempt.outcome = "failed"
    attempt.checks.append(Check(name=step, passed=False, detail=str(err)))


def _write_summary(project: Project, reservation: _Reservation) -> None:
    attempt, bundle = reservation.attempt, reservation.bundle
    try:
        summary = render_template(
            project,
            "summary.md.j2",
            plan=reservation.plan_file.plan,
            phase=reservation.phase,
            task=reservation.task,
            attempt=attempt,
            files=listing(bundle) + ["summary.md"],
        )
    except PlanctlError as err:  # the bundle is incomplete without its summary: say so, keep the rest
        _fail(attempt, "summary.md", err)
        summary = f"# Attempt #{attempt.number}: {attempt.outcome}\n\nsummary.md.j2 failed: {err}\n"
    atomic_write_text(bundle.file("summary.md"), summary)


def _reserve(project: Project, plan_name: str, task_id: str, force: bool, repo: Repo | None) -> _Reservation:
    with project_lock(project.lock_path):
        plan_files = read_all(project)
        plan_file = select_plan(project, plan_files, plan_name)
        task = plan_file.task(task_id)
        phase, _ = plan_file.plan.find_task(task_id)  # type: ignore[misc]
        _check_runnable(project, plan_file, phase, task, force)
        path = records_path(project, plan_file.name)
        records = load_records(path, plan_file.plan.initiative.id)
        records.reap_orphans()
        git = gitmeta.git_state(repo)
        bundle = create_bundle(project, plan_file.plan, phase)
        try:
            attempt = Attempt(
                number=records.next_number(plan_file.plan.prior_attempts),
                task=task.id,
                phase=phase.id,
                stamp=bundle.stamp,
                outcome="running",
                started=utc_now(),
                command=task.run.command,  # type: ignore[union-attr]
                bundle=project.display(bundle.path),
                git={k: git[k] for k in ("commit", "branch", "dirty")} if git else None,
            )
            records.attempts.append(attempt)
            # Rendered before anything is written: a template error leaves no trace.
            views = derived_files(project, plan_files, {plan_file.name: records})
        except BaseException:
            shutil.rmtree(bundle.path)
            raise
        write_json(bundle.file("git.json"), git if git else {"repository": None})
        save_records(path, records)
        changed = write_derived(views)
    return _Reservation(plan_file, phase, task, attempt.model_copy(), bundle, changed)


def _check_runnable(project: Project, plan_file: PlanFile, phase: Phase, task: Task, force: bool) -> None:
    where = f"{plan_file.display}: task {task.id}"
    if task.run is None:
        raise PlanctlError(f"{where} has no run spec: nothing to run")
    if not (project.root / task.run.cwd).is_dir():
        raise PlanctlError(f"{where}: working directory {task.run.cwd} does not exist")
    waiting = blockers(plan_file.plan, phase, task)
    if waiting and not force:
        listed = ", ".join(f"{t.id} {t.state.value}" for t in waiting)
        raise PlanctlError(f"{where} is not ready: waiting for {listed} (--force runs it anyway)")


def _execute(project: Project, reservation: _Reservation) -> None:
    """Fill the bundle and judge the attempt (in place). May raise Interrupted."""
    plan, phase, task = reservation.plan_file.plan, reservation.phase, reservation.task
    attempt, bundle, spec = reservation.attempt, reservation.bundle, task.run
    assert spec is not None
    cwd = (project.root / spec.cwd).resolve()
    variables = {
        **plan.guard_env,
        **spec.env,
        "PLANCTL_BUNDLE": str(bundle.path),
        "PLANCTL_STAMP": bundle.stamp,
        "PLANCTL_ATTEMPT": str(attempt.number),
        "PLANCTL_PLAN": plan.initiative.id,
        "PLANCTL_TASK": task.id,
        "PLANCTL_ROOT": str(project.root),
    }
    if spec.command and (_PYTEST.search(spec.command) or spec.expect.junit):
        # PYTEST_ADDOPTS reaches pytest however the command starts it (env ..., python -m, scripts).
        extra = f"--junitxml={bundle.file('junit.xml')}"
        variables["PYTEST_ADDOPTS"] = f"{os.environ.get('PYTEST_ADDOPTS', '')} {extra}".strip()
    # Tools installed beside planctl (pytest, nanobrag, planctl) are found even without an activated venv.
    tools = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if tools not in path.split(os.pathsep):
        path = os.pathsep.join(filter(None, [tools, path]))
    env = {**os.environ, "PATH": path, **variables}
    write_json(bundle.file("env.json"), environment_snapshot(plan.guard_env, spec.env, env))
    exit_code = None
    if spec.command:
        atomic_write_text(bundle.file("commands.txt"), commands_text(spec.command, cwd, variables))
        finished = run_command(spec.command, cwd, env, spec.timeout, bundle.file("output.log"))
        exit_code = attempt.exit_code = finished.exit_code
        attempt.duration_s = finished.duration_s
        atomic_write_text(bundle.file("exit_code.txt"), f"{finished.exit_code}\n")
        if finished.stopped_by:
            attempt.outcome, attempt.reason, attempt.finished = "interrupted", finished.stopped_by, utc_now()
            return
    # Templates render after the command, so a design packet can quote what the command measured.
    for artifact in spec.render:
        target = bundle.file(artifact.output)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            target,
            render_template(
                project,
                artifact.template,
                plan=plan,
                phase=phase,
                task=task,
                attempt=attempt,
                evidence=_earlier_attempts(project, reservation),
                vars=artifact.vars,
                data={name: _json_input(cwd / expand(path, env)) for name, path in artifact.data.items()},
            ),
        )
    missing = collect_artifacts(spec.artifacts, cwd, bundle, env)
    facts = RunFacts(exit_code, junit_counts(bundle.file("junit.xml")), cwd, env, missing)
    attempt.checks, attempt.metrics = judge(spec.expect, facts)
    attempt.outcome = "passed" if all(c.passed for c in attempt.checks) else "failed"
    attempt.finished = utc_now()


def _json_input(path: Path) -> object:
    """A JSON file a template asked for; a missing or malformed one fails the attempt with its name."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PlanctlError(f"template data {path}: {err}") from err


def _earlier_attempts(project: Project, reservation: _Reservation) -> list[Attempt]:
    records = load_records(records_path(project, reservation.plan_file.name), reservation.plan_file.plan.initiative.id)
    return [a for a in records.attempts if a.number < reservation.attempt.number and a.outcome != "running"]


def _record(project: Project, reservation: _Reservation, repo: Repo | None) -> str | None:
    """Store the outcome, move the task's state, regenerate views and commit: one locked step."""
    attempt = reservation.attempt
    with project_lock(project.lock_path):
        plan_files = read_all(project)
        plan_file = select_plan(project, plan_files, reservation.plan_file.name)
        path = records_path(project, plan_file.name)
        records = load_records(path, plan_file.plan.initiative.id)
        _replace(records, attempt)
        before = plan_file.task(attempt.task).state
        moves = attempt.outcome == "passed" and before is not TaskState.DONE
        if moves:
            why = f"attempt #{attempt.number} passed"
            records.transitions.append(
                Transition(
                    task=attempt.task,
                    before=before,
                    after=TaskState.DONE,
                    why=why,
                    by=f"attempt #{attempt.number}",
                )
            )
            set_task_state(plan_file, attempt.task, TaskState.DONE, None)
        render_error = None
        try:
            views = derived_files(project, plan_files, {plan_file.name: records})
        except PlanctlError as err:  # a broken template must not cost the evidence: store it, then report
            views, render_error = {}, err
        save_records(path, records)  # the attempt is the evidence: it is stored before the plan moves
        if moves:
            save_plan(plan_file)
        if render_error is not None:
            raise render_error
        changed = write_derived(views)
        if repo is None:
            return None
        paths = [reservation.bundle.path, plan_file.path, path, *reservation.changed, *changed]
        return gitmeta.commit_paths(repo, paths, _message(plan_file, attempt))


def _replace(records: Records, attempt: Attempt) -> None:
    index = next(i for i, a in enumerate(records.attempts) if a.number == attempt.number)
    records.attempts[index] = attempt


def _message(plan_file: PlanFile, attempt: Attempt) -> str:
    return gitmeta.commit_message(
        f"planctl: {plan_file.plan.initiative.id} {attempt.task} attempt #{attempt.number} {attempt.outcome}",
        {
            "Plan": plan_file.display,
            "Task": attempt.task,
            "Attempt": attempt.number,
            "Stamp": attempt.stamp,
            "Exit-Code": attempt.exit_code,
            "Source-Commit": attempt.git.get("commit") if attempt.git else None,
        },
    )
