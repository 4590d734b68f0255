"""One triage run: an attempt of kind ``triage`` (:class:`TriageKind`) at the triage initiative's
task, through the engine's steps.

    reserve  (engine.reserve)    attempt #N of kind triage, bundle <artifacts root>/phase_<x>/<STAMP>/
    execute  (TriageKind)        collect: pytest --collect-only with the plugin (engine.run_in_bundle):
                                 every node id, collection errors; chunk: split by the durations of
                                 earlier runs (chunks.py); each chunk a pytest process
                                 (process.RunningCommand), J at a time, in the engine's command
                                 environment (guard env, PLANCTL_*), its output captured as any
                                 command's (engine.open_capture), its process group recorded first
    record   (engine.record)     conclude, under the lock: clusters updated, tests.json and the
                                 summaries written; records saved, the tracker regenerated, one
                                 commit with trailers

A chunk that outlives ``timeout_per_chunk`` is stopped (its stacks dumped first). Ctrl-C or SIGTERM
stops the running chunks; every chunk that finished keeps its results, and the attempt is recorded
as interrupted.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planctl.bundle import environment_snapshot, write_json
from planctl.capture import OutputCapture
from planctl.engine import (
    CommandEnv,
    Reservation,
    RunResult,
    StateMove,
    command_env,
    fail,
    note_process,
    open_capture,
    run_attempt,
    run_in_bundle,
)
from planctl.errors import PlanctlError
from planctl.process import TIMEOUT, Interrupted, Mark, RunningCommand, signals_noted
from planctl.project import Project
from planctl.records import Attempt, AttemptKindName, Check, ProcessMark, Records, load_records, records_path
from planctl.safeio import atomic_write_text
from planctl.schema import Phase, Task, TaskState, TriageSettings
from planctl.store import PlanFile, read_all
from planctl.triage import clusters as registry
from planctl.triage.chunks import TESTS_FILE, Chunk, plan_chunks, recorded_durations, write_selection
from planctl.triage.model import COUNTS, SlowTest, Totals, TriageRun
from planctl.triage.progress import RunProgress
from planctl.triage.pytest_plugin import COLLECTED, OUT_VARIABLE, RESULTS, SELECT_VARIABLE, STACKS
from planctl.triage.results import (
    ChunkOutcome,
    Failure,
    ResultsFile,
    collect_failures,
    describe_exit,
    empty_counts,
    judge_chunk,
)
from planctl.views import render_template

PLUGIN = "planctl.triage.pytest_plugin"
POLL_S = 0.2
TAIL_LINES = 40  # of a log kept in the summary of a chunk that did not complete
SLOWEST = 10


@dataclass(frozen=True)
class TriageOptions:
    """The command line; None falls back to the plan's ``triage`` section."""

    args: list[str] | None = None
    chunks: int | None = None
    by_file: bool = False
    jobs: int | None = None
    timeout_per_chunk: float | None = None

    def resolve(self, settings: TriageSettings) -> TriageSettings:
        split = settings.split
        if self.by_file or self.chunks is not None:  # the command line's choice wins over the plan's
            split = "file" if self.by_file else "balanced"
        return settings.model_copy(
            update={
                "args": settings.args if self.args is None else self.args,
                "chunks": self.chunks or settings.chunks,
                "split": split,
                "jobs": self.jobs or settings.jobs,
                "timeout_per_chunk": self.timeout_per_chunk or settings.timeout_per_chunk,
            }
        )


def run_triage(
    project: Project, options: TriageOptions, *, commit: bool, progress: RunProgress, say: Callable[[str], None]
) -> RunResult:
    """One triage run of the project's triage initiative, as an attempt at its triage task."""
    plan_file = registry.triage_plan(read_all(project))
    task = registry.triage_task(plan_file)
    kind = TriageKind(options, progress)
    return run_attempt(project, plan_file.name, task.id, kind, commit=commit, say=say, echo=_silent)


@dataclass
class TriageKind:
    """``planctl triage run``: the triage initiative's triage task, whose attempt runs the suite in
    chunks (execute) and clusters its failures under the record step's lock (conclude). It never
    moves the task's state: a baseline is recorded, not a task proven."""

    options: TriageOptions
    progress: RunProgress
    name: AttemptKindName = "triage"
    _settings: TriageSettings | None = field(default=None, init=False)
    _run: _TriageRun | None = field(default=None, init=False)

    def admit(
        self, project: Project, plan_file: PlanFile, phase: Phase, task: Task, records: Records
    ) -> dict[str, Any]:
        if plan_file.plan.triage is None:
            raise PlanctlError(f"{plan_file.display}: the plan has no `triage:` section")
        expected = registry.triage_task(plan_file)
        if task.id != expected.id:
            raise PlanctlError(f"{plan_file.display}: triage runs are attempts at task {expected.id}, not {task.id}")
        self._settings = self.options.resolve(plan_file.plan.triage)
        return {"command": _command_line(self._settings)}

    def execute(
        self, project: Project, reservation: Reservation, say: Callable[[str], None], echo: Callable[[bytes], None]
    ) -> None:
        self._run = self._triage_run(project, reservation)
        try:
            self._run.execute()
        finally:
            self.progress.close()

    def conclude(self, project: Project, reservation: Reservation, records: Records) -> None:
        self._triage_run(project, reservation).conclude(records)

    def settle(self, attempt: Attempt, before: TaskState) -> StateMove | None:
        return None

    def _triage_run(self, project: Project, reservation: Reservation) -> _TriageRun:
        """The run of this attempt (created empty when a signal stopped it before it began)."""
        if self._run is None:
            assert self._settings is not None  # admit came first
            self._run = _TriageRun(project, reservation, self._settings, self.progress)
        return self._run


def _command_line(settings: TriageSettings) -> str:
    words = ["planctl", "triage", "run"]
    words += ["--by", "file"] if settings.split == "file" else ["--chunks", str(settings.chunks)]
    words += ["--jobs", str(settings.jobs), "--timeout-per-chunk", f"{settings.timeout_per_chunk:g}"]
    return shlex.join([*words, "--", *settings.args] if settings.args else words)


@dataclass
class _Running:
    chunk: Chunk
    folder: Path
    capture: OutputCapture
    command: RunningCommand
    began: float
    results: ResultsFile
    stopped: str | None = None


@dataclass
class _TriageRun:
    project: Project
    reservation: Reservation
    settings: TriageSettings
    progress: RunProgress
    collected: list[str] = field(default_factory=list)
    rootdir: Path | None = None
    collect_errors: list[Failure] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    timed: int = 0  # collected tests with a duration from an earlier run
    outcomes: dict[str, ChunkOutcome] = field(default_factory=dict)
    live: dict[str, ResultsFile] = field(default_factory=dict)

    @property
    def bundle(self) -> Path:
        return self.reservation.bundle.path

    def execute(self) -> None:
        started = time.monotonic()
        plan = self.reservation.plan_file.plan
        env = command_env(self.project, self.reservation)  # the guard environment and PLANCTL_*
        write_json(self.bundle / "env.json", environment_snapshot(plan.guard_env, {}, env.env))
        try:
            try:
                self._collect(env)
            except PlanctlError as err:  # pytest could not collect the suite: nothing to run
                fail(self.reservation.attempt, "collection", err)
                return
            records = load_records(records_path(self.project, self.reservation.plan_file.name), plan.initiative.id)
            durations = recorded_durations(self.project, records)
            self.timed = sum(test in durations for test in self.collected)
            self.chunks = plan_chunks(self.collected, durations, count=self.settings.chunks, split=self.settings.split)
            self.progress.start(len(self.collected), self.chunks, self.settings.jobs)
            self._run_chunks(env)
        finally:
            self.reservation.attempt.duration_s = round(time.monotonic() - started, 3)

    def _pytest(self, *options: str) -> str:
        return shlex.join([sys.executable, "-m", "pytest", "-p", PLUGIN, *options, *self.settings.args])

    def _note_group(self, mark: Mark | None) -> None:
        """Record a pytest process's group before it starts, so that a planctl killed outright
        leaves nothing the next run cannot find and end."""
        group = ProcessMark.of(mark)
        if group is not None:
            note_process(self.project, self.reservation, lambda a: setattr(a, "groups", [*(a.groups or []), group]))

    def _collect(self, env: CommandEnv) -> None:
        folder = self.bundle / "collect"
        folder.mkdir()
        finished, _ = run_in_bundle(
            self.project,
            self.reservation,
            self._pytest("--collect-only", "-q"),
            # Never the selection of an outer run (a triage run inside a chunk, as in planctl's own tests).
            env.adding({OUT_VARIABLE: str(folder), SELECT_VARIABLE: ""}),
            time.monotonic() + self.settings.timeout_per_chunk,
            _silent,
            folder=folder,
            note=self._note_group,
        )
        _stack_dump(folder)
        if finished.stopped_by == TIMEOUT:
            raise PlanctlError(f"pytest's collection did not finish within {self.settings.timeout_per_chunk:g} s")
        try:
            collected = json.loads((folder / COLLECTED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            tail = _tail(folder / "output.log", 1).strip() or "no output"
            raise PlanctlError(
                f"pytest could not collect the suite ({describe_exit(finished.exit_code)}): {tail}"
            ) from None
        self.collected, self.rootdir = collected["tests"], Path(collected["rootdir"])
        self.collect_errors = collect_failures(ResultsFile(folder / RESULTS))

    def _run_chunks(self, env: CommandEnv) -> None:
        queue = list(self.chunks)
        running: dict[str, _Running] = {}
        with signals_noted() as received:
            try:
                while (queue or running) and not received:
                    while queue and len(running) < self.settings.jobs:
                        chunk = queue.pop(0)
                        running[chunk.name] = self._start(chunk, env, received)
                    for name, chunk_run in list(running.items()):
                        ended = chunk_run.command.exited()
                        if not ended and time.monotonic() - chunk_run.began > self.settings.timeout_per_chunk:
                            chunk_run.stopped = "timeout"
                        if ended or chunk_run.stopped:
                            self._finish(chunk_run)
                            del running[name]
                    self._show()
                    time.sleep(POLL_S)
            except BaseException:  # planctl failed: nothing it started outlives it
                for chunk_run in running.values():
                    chunk_run.command.end()
                    chunk_run.capture.close()
                raise
            for chunk_run in running.values():  # planctl was interrupted: stop what runs, keep what finished
                chunk_run.stopped = "signal"
                self._finish(chunk_run)
        if received:
            raise Interrupted(received[0])

    def _start(self, chunk: Chunk, env: CommandEnv, received: list[int]) -> _Running:
        folder = self.bundle / "chunks" / chunk.name
        folder.mkdir(parents=True)
        selection = write_selection(chunk, folder)
        command = self._pytest(f"--junitxml={folder / 'junit.xml'}", "--continue-on-collection-errors")
        env = env.adding({OUT_VARIABLE: str(folder), SELECT_VARIABLE: str(selection)})
        capture = open_capture(self.reservation, folder, command, env, _silent)
        try:
            command_run = RunningCommand.start(command, env.cwd, env.env, capture.feed, self._note_group, received)
        except BaseException:
            capture.close()
            raise
        results = self.live[chunk.name] = ResultsFile(folder / RESULTS)
        self.progress.chunk_started(chunk)
        return _Running(chunk, folder, capture, command_run, time.monotonic(), results)

    def _finish(self, chunk_run: _Running) -> None:
        """End the chunk's process group (it ended, timed out, or planctl was stopped), then judge it."""
        chunk_run.command.end()
        exit_code = chunk_run.command.process.returncode
        chunk_run.capture.close()
        folder = chunk_run.folder
        atomic_write_text(folder / "exit_code.txt", f"{exit_code}\n")
        stacks = _stack_dump(folder)
        outcome = judge_chunk(
            chunk_run.chunk.name,
            chunk_run.chunk.tests,
            chunk_run.chunk.expected_s,
            chunk_run.results,
            exit_code=exit_code,
            stopped=chunk_run.stopped,
            duration_s=round(time.monotonic() - chunk_run.began, 3),
            stacks=stacks,
            log_tail=_tail(folder / "output.log", TAIL_LINES),
            rootdir=self.rootdir or self.project.root,
            timeout_s=self.settings.timeout_per_chunk,
        )
        self.outcomes[chunk_run.chunk.name] = outcome
        self.progress.chunk_finished(outcome.result, len(outcome.failures))

    def _not_started(self, chunk: Chunk) -> ChunkOutcome:
        return judge_chunk(
            chunk.name,
            chunk.tests,
            chunk.expected_s,
            ResultsFile(self.bundle / "chunks" / chunk.name / RESULTS),
            exit_code=None,
            stopped="not started",
            duration_s=None,
            stacks="",
            log_tail="",
            rootdir=self.rootdir or self.project.root,
            timeout_s=self.settings.timeout_per_chunk,
        )

    def _show(self) -> None:
        for results in self.live.values():
            results.read()
        self.progress.update(
            {name: len(r.finished) for name, r in self.live.items()},
            {name: r.failures_seen for name, r in self.live.items()},
        )

    # --- conclude: under the project lock, in engine.record -----------------------------------

    def conclude(self, records: Records) -> None:
        """Clusters, totals, checks and the bundle's summaries of this run (the records as stored)."""
        attempt, bundle = self.reservation.attempt, self.reservation.bundle
        plan = self.reservation.plan_file.plan
        display = self.project.display
        error = next((c.detail for c in attempt.checks if not c.passed), None)  # it stopped before it ended
        outcomes = [self.outcomes.get(c.name) or self._not_started(c) for c in self.chunks]
        index = {t: i for i, t in enumerate(self.collected)}
        failures = self.collect_errors + sorted(
            (f for o in outcomes for f in o.failures), key=lambda f: index.get(f.test, len(index))
        )
        for failure in failures:  # messages reach records, summaries and tests.json: no secret may
            failure.message = self.reservation.redactor.text(failure.message)
        tests = [t for o in outcomes for t in o.tests]
        chunk_summary = {o.result.name: f"{display(bundle.path)}/chunks/{o.result.name}/summary.md" for o in outcomes}
        findings = registry.Findings(
            failures=failures,
            outcomes={t.test: t.outcome for t in tests} | {f.test: "error" for f in self.collect_errors},
            collected=self.collected,
            evidence={t.test: chunk_summary[t.chunk] for t in tests},
            run_summary=f"{display(bundle.path)}/summary.md",
        )
        assert plan.triage is not None
        ids = registry.update(records, plan.triage.historical_clusters, findings, attempt)
        counts = sum((o.counts for o in outcomes), empty_counts())
        counts["errors"] += len(self.collect_errors)
        previous = [a for a in registry.triage_runs(records.attempts) if a.number < attempt.number]
        shown = registry.registry(records.clusters, [])
        attempt.triage = TriageRun(
            args=self.settings.args,
            split=self.settings.split,
            jobs=self.settings.jobs,
            timeout_per_chunk=self.settings.timeout_per_chunk,
            totals=Totals(collected=len(self.collected), **{k: counts[k] for k in (*COUNTS, "not_run")}),
            chunks=[o.result for o in outcomes],
            slowest=[
                SlowTest(test=t.test, seconds=t.duration)
                for t in sorted(tests, key=lambda t: -t.duration)[:SLOWEST]
                if t.outcome != "not run"
            ],
            timed=self.timed,
            compared_with=previous[-1].number if previous else None,
            clusters=registry.comparison(shown, attempt.number),
        )
        if error is None:
            self._judge(attempt)
        self._judge_metrics(attempt)
        self._write_files(records, attempt, outcomes, failures, ids, previous, error)

    def _judge(self, attempt: Attempt) -> None:
        assert attempt.triage is not None
        totals, chunks = attempt.triage.totals, attempt.triage.chunks
        incomplete = [c for c in chunks if c.outcome != "completed"]
        attempt.checks += [
            Check(name="collection", passed=bool(self.collected), detail=f"{len(self.collected)} tests collected"),
            Check(
                name="chunks completed",
                passed=not incomplete,
                detail=f"{len(chunks) - len(incomplete)} of {len(chunks)}"
                + "".join(f"; {c.name} {c.outcome}" for c in incomplete),
            ),
            Check(
                name="no failures",
                passed=totals.failed + totals.errors + totals.not_run == 0,
                detail=f"{totals.failed} failed, {totals.errors} errors, {totals.not_run} not run",
            ),
        ]
        if attempt.outcome != "interrupted":
            attempt.outcome = "passed" if all(c.passed for c in attempt.checks) else "failed"

    @staticmethod
    def _judge_metrics(attempt: Attempt) -> None:
        """The totals as the junit metric every attempt records (for plots and ledgers)."""
        assert attempt.triage is not None
        totals = attempt.triage.totals
        attempt.metrics = {
            "junit": {
                "tests": totals.collected,
                "passed": totals.passed,
                "failed": totals.failed,
                "errors": totals.errors,
                "skipped": totals.skipped + totals.xfailed,
            }
        }

    def _write_files(
        self,
        records: Records,
        attempt: Attempt,
        outcomes: list[ChunkOutcome],
        failures: list[Failure],
        ids: dict[str, str],
        previous: list[Attempt],
        error: str | None,
    ) -> None:
        """tests.json, and summary.md of the run and of each chunk (a template error is recorded as
        a failed check, with a plain summary in its place: the evidence is kept either way)."""
        bundle = self.reservation.bundle
        cluster_of = {id(f): ids.get(str(f.signature), "") for f in failures}
        write_json(
            bundle.file(TESTS_FILE),
            {
                "rootdir": str(self.rootdir) if self.rootdir else None,
                "tests": [vars(t) for o in outcomes for t in o.tests],
                "failures": [f.as_json() | {"cluster": cluster_of[id(f)]} for f in failures],
            },
        )
        plan = self.reservation.plan_file.plan
        assert attempt.triage is not None
        context = {"plan": plan, "attempt": attempt, "run": attempt.triage}
        for outcome in outcomes:
            folder = bundle.path / "chunks" / outcome.result.name
            if not folder.is_dir():
                continue  # never started: the run's summary lists it
            self._render(
                attempt,
                folder / "summary.md",
                "triage_chunk.md.j2",
                context
                | {
                    "chunk": outcome.result,
                    "tests": outcome.tests,
                    "failures": [(f, cluster_of[id(f)]) for f in outcome.failures],
                    "last_output": _tail(folder / "output.log", TAIL_LINES)
                    if outcome.result.outcome != "completed"
                    else "",
                    "stacks": _read(folder / STACKS),
                    "files": sorted({p.name for p in folder.iterdir()} | {"summary.md"}),
                },
            )
        self._render(
            attempt,
            bundle.file("summary.md"),
            "triage_summary.md.j2",
            context
            | {
                "previous": previous[-1] if previous else None,
                "comparison": attempt.triage.clusters,
                "clusters": {c.id: c for c in registry.registry(records.clusters, [])},
                "failures": [(f, cluster_of[id(f)]) for f in failures],
                "error": error,
            },
        )

    def _render(self, attempt: Attempt, path: Path, template: str, context: dict[str, Any]) -> None:
        try:
            text = self.reservation.redactor.text(render_template(self.project, template, **context))
        except PlanctlError as err:
            outcome = attempt.outcome
            fail(attempt, path.name, err)
            attempt.outcome = outcome if outcome == "interrupted" else "failed"
            text = f"# Triage attempt #{attempt.number}: {attempt.outcome}\n\n{template} failed: {err}\n"
        atomic_write_text(path, text)


def _silent(_data: bytes) -> None:
    """Chunks are not echoed: the live display stands for them."""


def _stack_dump(folder: Path) -> str:
    """What the plugin dumped at SIGTERM; the file is removed when nothing was (no stop)."""
    path = folder / STACKS
    text = _read(path)
    if path.exists() and not text.strip():
        path.unlink()
    return text


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
