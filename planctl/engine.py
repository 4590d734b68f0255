"""Run one task: reserve an attempt, run its command into an evidence bundle, judge the outcome,
record it, move the task's state, regenerate the views and commit.

Concurrency and crashes: the two read-modify-write steps (reserving attempt #N, then recording
its outcome) each run under the project lock with SIGINT/SIGTERM deferred; the command itself runs
outside the lock, so runs overlap. The attempt record is written before the plan changes, and a
run killed outright leaves a ``running`` record that the next run marks ``interrupted``, after
ending what is left of its command (the record names the command's process group).

Deadline and hostile output: the task's timeout bounds the whole attempt. The command gets what
is left of it, then templates, artifacts and checks run in a child process that is killed at the
deadline (they read files the command left, which may never end). Everything the attempt wrote
is redacted (planctl.redact) before it is recorded or committed.

Steps, shared by every kind of attempt: :func:`reserve` (attempt #N and its bundle), the kind's
``execute`` (fill the bundle, judge the outcome), :func:`record` (store, move the state, commit; the
kind's ``conclude`` adds what its outcome means to the records and writes summary.md). An
:class:`AttemptKind` says which tasks a kind may run, how it executes and what its outcome does to
the task's state; :func:`run_attempt` drives the steps. ``planctl run`` is RunKind, ``planctl verify``
VerifyKind: both execute a task's run spec (:func:`execute`), itself made of named steps that other
kinds reuse: :func:`command_env` (the environment), :func:`run_in_bundle` (running one command into
the bundle), :func:`render_artifacts` (templates) and :func:`judge_outcome` (the checks).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from planctl import gitmeta
from planctl.bundle import (
    Bundle,
    collect_artifacts,
    commands_text,
    create_bundle,
    environment_snapshot,
    junit_counts,
    listing,
    redact_bundle,
    write_json,
)
from planctl.capture import Captured, OutputCapture
from planctl.confine import Confinement
from planctl.errors import PlanctlError
from planctl.expect import RunFacts, judge
from planctl.freshness import MANIFEST_NAME, task_manifest
from planctl.graph import blockers
from planctl.process import (
    TIMEOUT,
    DeadlinePassed,
    Finished,
    Interrupted,
    Mark,
    call_in_child,
    run_command,
    signals_deferred,
)
from planctl.project import Project
from planctl.publish import derived_files, write_derived
from planctl.readback import read_bounded
from planctl.records import (
    Attempt,
    AttemptKindName,
    Check,
    ProcessMark,
    Records,
    Transition,
    load_records,
    records_path,
    save_records,
    utc_now,
)
from planctl.redact import Redactor
from planctl.safeio import atomic_write_text, project_lock
from planctl.schema import Phase, Plan, Task, TaskState
from planctl.store import PlanFile, read_all, save_plan, select_plan, set_task_state
from planctl.triage.clusters import cluster_tests
from planctl.triage.junit import junit_outcomes
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
class Reservation:
    """Attempt #N reserved for a task: its record (``running``) and its empty bundle exist."""

    plan_file: PlanFile
    phase: Phase
    task: Task
    attempt: Attempt
    bundle: Bundle
    changed: list[Path]
    redactor: Redactor
    # Bundle files redacted as they were written (command output, see run_in_bundle): sealing skips them.
    captured: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class StateMove:
    state: TaskState
    why: str


class AttemptKind(Protocol):
    """What sets one kind of attempt apart from another; the steps themselves are shared."""

    @property
    def name(self) -> AttemptKindName:
        """Recorded as the attempt's ``kind``."""

    def admit(
        self, project: Project, plan_file: PlanFile, phase: Phase, task: Task, records: Records
    ) -> dict[str, Any]:
        """Refuse (PlanctlError) a task this kind may not run, else return the fields it records on the
        new attempt; called under the lock before reserving."""

    def execute(
        self, project: Project, reservation: Reservation, say: Callable[[str], None], echo: Callable[[bytes], None]
    ) -> None:
        """Fill the bundle and judge the attempt (in place). Interrupted records it as interrupted, a
        PlanctlError as failed with the reason; either way the later steps still run."""

    def conclude(self, project: Project, reservation: Reservation, records: Records) -> None:
        """Once the outcome is known, under the lock with the records as stored: what the outcome adds
        to ``records`` besides the attempt, and the bundle's summary.md (a broken template fails it)."""

    def settle(self, attempt: Attempt, before: TaskState) -> StateMove | None:
        """The state the task moves to once ``attempt`` has its outcome (None: it stays). It may note
        on the attempt why (its ``reason``)."""


class RunSpecSteps:
    """execute and conclude of the kinds that run a task's run spec (run, verify)."""

    def execute(
        self, project: Project, reservation: Reservation, say: Callable[[str], None], echo: Callable[[bytes], None]
    ) -> None:
        execute(project, reservation, say, echo)

    def conclude(self, project: Project, reservation: Reservation, records: Records) -> None:
        write_summary(project, reservation)


@dataclass(frozen=True)
class RunKind(RunSpecSteps):
    """``planctl run``: a runnable, ready task (any, with ``force``, blocked ones included); a pass closes it."""

    force: bool = False
    name: AttemptKindName = "run"

    def admit(
        self, project: Project, plan_file: PlanFile, phase: Phase, task: Task, records: Records
    ) -> dict[str, Any]:
        require_run_spec(project, plan_file, task)
        if task.state is TaskState.BLOCKED and not self.force:
            waits = f" (waits on {', '.join(task.waits_on)})" if task.waits_on else ""
            raise PlanctlError(
                f"{plan_file.display}: task {task.id} is blocked: {task.reason}{waits} "
                "(--force runs it anyway; planctl set --state open unblocks it)"
            )
        waiting = blockers(plan_file.plan, phase, task)
        if waiting and not self.force:
            listed = ", ".join(f"{t.id} {t.state.value}" for t in waiting)
            raise PlanctlError(
                f"{plan_file.display}: task {task.id} is not ready: waiting for {listed} (--force runs it anyway)"
            )
        return {}

    def settle(self, attempt: Attempt, before: TaskState) -> StateMove | None:
        if attempt.outcome == "passed" and before is not TaskState.DONE:
            return StateMove(TaskState.DONE, f"attempt #{attempt.number} passed")
        return None


def _stdout(data: bytes) -> None:
    out = getattr(sys.stdout, "buffer", None)
    if out is not None:
        out.write(data)
        out.flush()
    else:
        sys.stdout.write(data.decode(errors="replace"))
        sys.stdout.flush()


def run_attempt(
    project: Project,
    plan_name: str,
    task_id: str,
    kind: AttemptKind,
    *,
    commit: bool,
    say: Callable[[str], None],
    echo: Callable[[bytes], None] = _stdout,
) -> RunResult:
    """One attempt of ``kind`` at a task, through every step: reserve, execute, record.

    Convention: attempt #N is reserved (its ``running`` record and bundle saved) under the project
    lock, the command and its checks run outside it, then the outcome is recorded, the task's state
    moved (``kind.settle``), the views regenerated and planctl's paths committed, under the lock again.
    Signals are deferred while files change; an interruption or a planctl error after the reservation
    still records the attempt.

    Args:
        project: the project (its root, plans, records and lock).
        plan_name: the plan, by file name or initiative id.
        task_id: the task's id.
        kind: what kind of attempt (:class:`RunKind`, ``planctl.verify.VerifyKind``): which tasks it
            admits and how its outcome moves the task's state.
        commit: commit planctl's paths with git metadata (when the project is a git repository).
        say: receives one-line progress messages.
        echo: receives the command's (redacted) output as it streams.

    Returns:
        The recorded attempt, the commit id (or None) and the signal that interrupted it (or None).

    Raises:
        PlanctlError: refused before anything was reserved (unknown plan or task, not admitted).
        Interrupted: a stop signal came while waiting for the lock.
    """
    repo = gitmeta.open_repo(project.root)
    reservation: Reservation | None = None
    interrupted = None
    unexpected: Exception | None = None
    try:
        with signals_deferred():  # a signal during the reservation lands once attempt #N exists
            reservation = reserve(project, plan_name, task_id, kind, repo)
        say(
            f"{reservation.plan_file.plan.initiative.id} {task_id}: {reservation.attempt.label}, "
            f"bundle {project.display(reservation.bundle.path)}"
        )
        kind.execute(project, reservation, say, echo)
    except Interrupted as signal_:
        if reservation is None:
            raise  # it came while waiting for the lock: nothing was reserved
        interrupted = signal_
        reservation.attempt.outcome, reservation.attempt.reason = "interrupted", f"{signal_} received"
    except PlanctlError as err:
        if reservation is None:
            raise  # refused before anything was reserved
        fail(reservation.attempt, "run", err)  # e.g. a broken template or its missing data
    except Exception as err:  # a planctl bug: the attempt is still recorded, then the error shows
        if reservation is None:
            raise
        unexpected = err
        fail(reservation.attempt, "planctl", PlanctlError(f"internal error: {type(err).__name__}: {err}"))
    attempt = reservation.attempt
    attempt.finished = attempt.finished or utc_now()
    commit_id = None
    try:
        with signals_deferred():  # recording is never cut short; a signal meanwhile lands after it
            _seal(reservation)
            commit_id = record(project, reservation, kind, repo if commit else None)
    except Interrupted as signal_:
        interrupted = interrupted or signal_
    if unexpected is not None:
        raise unexpected
    if commit and repo is None:
        say(f"warning: {project.root} is not inside a git repository; the attempt is recorded but not committed")
    return RunResult(attempt, commit_id, interrupted)


def fail(attempt: Attempt, step: str, err: PlanctlError) -> None:
    """The attempt failed at ``step``, for the reason ``err`` gives (recorded as a failed check)."""
    attempt.outcome = "failed"
    attempt.checks.append(Check(name=step, passed=False, detail=str(err)))


def _seal(reservation: Reservation) -> None:
    """Redact the bundle's files (the command may have written into it directly) and the attempt's
    own text, before either is recorded or committed."""
    redactor, attempt = reservation.redactor, reservation.attempt
    redact_bundle(reservation.bundle, redactor, already=reservation.captured)
    attempt.reason = None if attempt.reason is None else redactor.text(attempt.reason)
    attempt.checks = [
        Check(name=redactor.text(c.name), passed=c.passed, detail=redactor.text(c.detail)) for c in attempt.checks
    ]


def write_summary(project: Project, reservation: Reservation) -> None:
    """summary.md of the bundle, once the outcome is known; a broken template fails the attempt."""
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
        fail(attempt, "summary.md", err)
        summary = f"# Attempt #{attempt.number}: {attempt.outcome}\n\nsummary.md.j2 failed: {err}\n"
    atomic_write_text(bundle.file("summary.md"), summary)


def reserve(project: Project, plan_name: str, task_id: str, kind: AttemptKind, repo: Repo | None) -> Reservation:
    """Number the attempt, create its bundle, save its ``running`` record and the views (locked)."""
    with project_lock(project.lock_path):
        plan_files = read_all(project)
        plan_file = select_plan(project, plan_files, plan_name)
        phase, task = plan_file.locate(task_id)
        path = records_path(project, plan_file.name)
        records = load_records(path, plan_file.plan.initiative.id)
        fields = kind.admit(project, plan_file, phase, task, records)
        # A kind may record its own command line (triage); otherwise the run spec's, if any.
        command = fields.pop("command", task.run.command if task.run else None)
        records.reap_orphans(project.root)
        git = gitmeta.git_state(repo)
        bundle = create_bundle(project, plan_file.plan, phase)
        try:
            attempt = Attempt(
                number=records.next_number(plan_file.plan.prior_attempts),
                kind=kind.name,
                task=task.id,
                phase=phase.id,
                stamp=bundle.stamp,
                outcome="running",
                started=utc_now(),
                command=command,
                bundle=project.display(bundle.path),
                git={k: git[k] for k in ("commit", "branch", "dirty")} if git else None,
                runner=ProcessMark.this_process(),
                **fields,
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
    redactor = _redactor(plan_file.plan, task)
    return Reservation(plan_file, phase, task, attempt.model_copy(), bundle, changed, redactor)


def _redactor(plan: Plan, task: Task) -> Redactor:
    env = {**os.environ, **plan.guard_env, **(task.run.env if task.run else {})}
    return Redactor.for_environment(env, plan.redact.names, plan.redact.patterns)


def require_run_spec(project: Project, plan_file: PlanFile, task: Task) -> None:
    """Refuse a task without a run spec, or whose working directory is missing or not allowed."""
    where = f"{plan_file.display}: task {task.id}"
    if task.run is None:
        raise PlanctlError(f"{where} has no run spec: nothing to run")
    try:
        cwd = Confinement.of(project.root, plan_file.plan).resolve("cwd", task.run.cwd, project.root, {})
    except PlanctlError as err:
        raise PlanctlError(f"{where}: {err}") from None
    if not cwd.is_dir():
        raise PlanctlError(f"{where}: working directory {task.run.cwd} does not exist")


@dataclass(frozen=True)
class CommandEnv:
    """Where the attempt's commands run and with what environment."""

    cwd: Path
    variables: dict[str, str]  # what planctl sets: guard environment, the task's, PLANCTL_*, extras
    env: dict[str, str]  # the whole environment
    confinement: Confinement

    def adding(self, extra: dict[str, str]) -> CommandEnv:
        return replace(self, variables={**self.variables, **extra}, env={**self.env, **extra})


def command_env(project: Project, reservation: Reservation, extra: dict[str, str] | None = None) -> CommandEnv:
    """Step: the environment of the attempt's commands. The plan's guard environment, the task's run
    environment, the ``PLANCTL_*`` variables and ``extra`` over planctl's own; the working directory
    is the run spec's (the project root for a task without one)."""
    plan, task, attempt, bundle = (
        reservation.plan_file.plan,
        reservation.task,
        reservation.attempt,
        reservation.bundle,
    )
    confinement = Confinement.of(project.root, plan)
    cwd = confinement.resolve("cwd", task.run.cwd, project.root, {}).resolve() if task.run else project.root
    variables = {
        **plan.guard_env,
        **(task.run.env if task.run else {}),
        "PLANCTL_BUNDLE": str(bundle.path),
        "PLANCTL_STAMP": bundle.stamp,
        "PLANCTL_ATTEMPT": str(attempt.number),
        "PLANCTL_PLAN": plan.initiative.id,
        "PLANCTL_TASK": task.id,
        "PLANCTL_ROOT": str(project.root),
        **(extra or {}),
    }
    # Tools installed beside planctl (pytest, nanobrag, planctl) are found even without an activated venv.
    tools = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if tools not in path.split(os.pathsep):
        path = os.pathsep.join(filter(None, [tools, path]))
    return CommandEnv(cwd, variables, {**os.environ, "PATH": path, **variables}, confinement)


def junit_request(path: Path) -> dict[str, str]:
    """The variable that makes pytest write junit XML to ``path``: PYTEST_ADDOPTS reaches pytest
    however the command starts it (env ..., python -m, scripts)."""
    return {"PYTEST_ADDOPTS": f"{os.environ.get('PYTEST_ADDOPTS', '')} --junitxml={path}".strip()}


def open_capture(
    reservation: Reservation, folder: Path, command: str, env: CommandEnv, echo: Callable[[bytes], None]
) -> OutputCapture:
    """commands.txt in ``folder`` (how to rerun ``command``), and the capture of its output there:
    redacted as it arrives and bounded by the plan's limits (planctl.capture)."""
    atomic_write_text(folder / "commands.txt", commands_text(command, env.cwd, env.variables))
    limits = reservation.plan_file.plan.limits
    capture = OutputCapture(folder, reservation.redactor, limits.log_bytes, limits.log_archive_bytes, echo)
    reservation.captured.update(
        str(p.relative_to(reservation.bundle.path)) for p in (capture.log_path, capture.archive_path)
    )
    return capture


def run_in_bundle(
    project: Project,
    reservation: Reservation,
    command: str,
    env: CommandEnv,
    deadline: float,
    echo: Callable[[bytes], None],
    *,
    folder: Path | None = None,
    note: Callable[[Mark | None], None] | None = None,
) -> tuple[Finished, Captured]:
    """Step: run one command of the attempt until ``deadline`` (monotonic), into ``folder`` (the
    bundle by default): commands.txt, output.log, exit_code.txt. ``note`` records its process group
    before it may start (default: as the attempt's ``group``). May raise Interrupted."""
    folder = folder or reservation.bundle.path
    capture = open_capture(reservation, folder, command, env, echo)
    try:
        finished = run_command(
            command,
            env.cwd,
            env.env,
            deadline,
            capture.feed,
            note or functools.partial(_note_group, project, reservation),
        )
    except OSError as err:
        raise PlanctlError(f"cannot start the command: {err.strerror or err}") from None
    finally:
        captured = capture.close()
    atomic_write_text(folder / "exit_code.txt", f"{finished.exit_code}\n")
    return finished, captured


def execute(
    project: Project, reservation: Reservation, say: Callable[[str], None], echo: Callable[[bytes], None]
) -> None:
    """Run the task's run spec: fill the bundle and judge the attempt (in place). May raise Interrupted."""
    attempt, bundle, spec = reservation.attempt, reservation.bundle, reservation.task.run
    assert spec is not None
    deadline = time.monotonic() + spec.timeout  # the whole attempt: command, templates, checks
    wants_junit = spec.command and (_PYTEST.search(spec.command) or spec.expect.junit or spec.expect.clusters)
    env = command_env(project, reservation, junit_request(bundle.file("junit.xml")) if wants_junit else None)
    write_json(bundle.file("env.json"), environment_snapshot(reservation.plan_file.plan.guard_env, spec.env, env.env))
    _record_inputs(project, reservation)
    exit_code = None
    if spec.command:
        finished, captured = run_in_bundle(project, reservation, spec.command, env, deadline, echo)
        if captured.cut:
            attempt.metrics["output_bytes"] = captured.total_bytes
        exit_code = attempt.exit_code = finished.exit_code
        attempt.duration_s = finished.duration_s
        if finished.leftovers:
            say(f"planctl: ended {finished.leftovers} process(es) that the command left running")
        if finished.stopped_by == TIMEOUT:
            attempt.outcome, attempt.reason = "interrupted", f"timeout after {spec.timeout:g} s"
            attempt.finished = utc_now()
            return
    judged = functools.partial(_after_command, project, reservation, env, exit_code)
    try:
        checks, metrics = call_in_child(judged, deadline)
    except DeadlinePassed:
        attempt.outcome = "interrupted"
        attempt.reason = f"timeout after {spec.timeout:g} s (templates, artifacts and checks unfinished)"
        attempt.finished = utc_now()
        return
    attempt.checks, attempt.metrics = checks, attempt.metrics | metrics
    attempt.outcome = "passed" if all(c.passed for c in attempt.checks) else "failed"
    attempt.finished = utc_now()


def _record_inputs(project: Project, reservation: Reservation) -> None:
    """The inputs as the command finds them (inputs.json, and their digest on the attempt): the
    evidence is about this content."""
    manifest = task_manifest(project, reservation.plan_file, reservation.task)
    write_json(reservation.bundle.file(MANIFEST_NAME), manifest.as_json())
    reservation.attempt.inputs_digest = manifest.digest


def _note_group(project: Project, reservation: Reservation, mark: Mark | None) -> None:
    group = ProcessMark.of(mark)
    if group is not None:  # without /proc there is nothing reliable to record
        note_process(project, reservation, lambda attempt: setattr(attempt, "group", group))


def note_process(project: Project, reservation: Reservation, update: Callable[[Attempt], None]) -> None:
    """Apply ``update`` (a process group the attempt started) to the attempt and to its stored
    record, under the lock, before that process may start: a planctl killed outright then leaves a
    group the next run can find and end."""
    update(reservation.attempt)
    with project_lock(project.lock_path, give_up_on_signal=False):
        path = records_path(project, reservation.plan_file.name)
        records = load_records(path, reservation.plan_file.plan.initiative.id)
        update(records.attempt(reservation.attempt.number))
        save_records(path, records)


def _after_command(
    project: Project, reservation: Reservation, env: CommandEnv, exit_code: int | None
) -> tuple[list[Check], dict[str, Any]]:
    """Render templates, copy artifacts and judge the checks; runs in a child process that the
    attempt's deadline can kill (see call_in_child). Templates render after the command, so a
    design packet can quote what the command measured."""
    plan, bundle, spec = reservation.plan_file.plan, reservation.bundle, reservation.task.run
    assert spec is not None
    render_artifacts(project, reservation, env)
    problems = collect_artifacts(spec.artifacts, env.cwd, bundle, env.env, env.confinement, plan.limits.artifact_bytes)
    return judge_outcome(project, reservation, env, exit_code, problems)


def render_artifacts(project: Project, reservation: Reservation, env: CommandEnv) -> None:
    """Step: the run spec's templates, rendered into the bundle with the JSON data they name."""
    plan, spec = reservation.plan_file.plan, reservation.task.run
    assert spec is not None
    for artifact in spec.render:
        target = reservation.bundle.file(artifact.output)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = {
            name: _json_input(env.confinement.resolve("template data", path, env.cwd, env.env), plan.limits.read_bytes)
            for name, path in artifact.data.items()
        }
        atomic_write_text(
            target,
            render_template(
                project,
                artifact.template,
                plan=plan,
                phase=reservation.phase,
                task=reservation.task,
                attempt=reservation.attempt,
                evidence=_earlier_attempts(project, reservation),
                vars=artifact.vars,
                data=data,
            ),
        )


def judge_outcome(
    project: Project, reservation: Reservation, env: CommandEnv, exit_code: int | None, problems: list[Check]
) -> tuple[list[Check], dict[str, Any]]:
    """Step: the run spec's expectations judged against what the command left (exit status, junit
    XML, files, metrics) and the artifact ``problems``; returns the checks and the metrics read."""
    spec, limit = reservation.task.run, reservation.plan_file.plan.limits.read_bytes
    assert spec is not None
    junit_path = reservation.bundle.file("junit.xml")
    try:
        junit: dict[str, int] | str | None = junit_counts(junit_path, limit)
    except PlanctlError as err:
        junit = str(err)
    facts = RunFacts(exit_code, junit, env.cwd, env.env, env.confinement, problems, limit)
    if spec.expect.clusters:  # "cluster Cn passes": its tests, from the triage records, in this run's junit XML
        try:
            outcomes: dict[tuple[str, str], str] | str | None = junit_outcomes(junit_path, limit)
        except PlanctlError as err:
            outcomes = str(err)
        facts = replace(facts, cluster_tests=cluster_tests(project, spec.expect.clusters), junit_tests=outcomes)
    return judge(spec.expect, facts)


def _json_input(path: Path, limit: int) -> object:
    """A JSON file a template asked for; a missing or malformed one fails the attempt with its name."""
    try:
        return json.loads(read_bounded(path, limit))
    except FileNotFoundError:
        raise PlanctlError(f"template data {path}: no such file") from None
    except PlanctlError as err:
        raise PlanctlError(f"template data {err}") from None
    except (ValueError, RecursionError) as err:
        why = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise PlanctlError(f"template data {path}: {why}") from None


def _earlier_attempts(project: Project, reservation: Reservation) -> list[Attempt]:
    records = load_records(records_path(project, reservation.plan_file.name), reservation.plan_file.plan.initiative.id)
    return [a for a in records.attempts if a.number < reservation.attempt.number and a.outcome != "running"]


def record(project: Project, reservation: Reservation, kind: AttemptKind, repo: Repo | None) -> str | None:
    """Store the outcome (with what the kind concludes from it), move the task's state, regenerate
    views and commit: one locked step."""
    attempt = reservation.attempt
    with project_lock(project.lock_path):
        plan_files = read_all(project)
        plan_file = select_plan(project, plan_files, reservation.plan_file.name)
        path = records_path(project, plan_file.name)
        records = load_records(path, plan_file.plan.initiative.id)
        kind.conclude(project, reservation, records)
        _replace(records, attempt)
        before = plan_file.task(attempt.task).state
        move = kind.settle(attempt, before)
        if move is not None:
            records.transitions.append(
                Transition(
                    task=attempt.task,
                    before=before,
                    after=move.state,
                    why=move.why,
                    by=f"attempt #{attempt.number}",
                )
            )
            set_task_state(plan_file, attempt.task, move.state, None)
        render_error = None
        try:
            views = derived_files(project, plan_files, {plan_file.name: records})
        except PlanctlError as err:  # a broken template must not cost the evidence: store it, then report
            views, render_error = {}, err
        save_records(path, records)  # the attempt is the evidence: it is stored before the plan moves
        if move is not None:
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
    subject = f"planctl: {plan_file.plan.initiative.id} {attempt.task} {attempt.label} {attempt.outcome}"
    if attempt.kind != "run" and attempt.reason:
        subject += f": {attempt.reason}"
    return gitmeta.commit_message(
        subject,
        {
            "Plan": plan_file.display,
            "Task": attempt.task,
            "Attempt": attempt.number,
            "Kind": None if attempt.kind == "run" else attempt.kind,
            "Verifies": attempt.verifies,
            "Stamp": attempt.stamp,
            "Exit-Code": attempt.exit_code,
            "Source-Commit": attempt.git.get("commit") if attempt.git else None,
            **(attempt.triage.trailers() if attempt.triage else {}),
        },
    )
