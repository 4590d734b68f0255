"""Per-plan records of what happened to a plan's tasks, stored as attempts/<plan>.yaml: numbered
run attempts and state transitions. The triage initiative's records also hold its triage runs
(attempts of kind ``triage``) and the failure clusters they found (planctl.triage.model).

Only planctl writes these files, always under the project lock and atomically. They are, with the
plans, the source of truth that ledgers are generated from.

Parsing YAML in pure Python takes milliseconds per attempt, which a report over thousands of
attempts cannot afford: records are read through planctl's parse cache (planctl.parsecache, keyed by
the text's hash, as plans are), and saving records primes it, so the next read costs a file read.
A miss is parsed by libyaml (planctl.plainyaml), else by ruamel.yaml, which is imported only then
and to write records: read-only commands start faster without it.
"""

from __future__ import annotations

import io
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError

from planctl import process
from planctl.errors import PlanctlError
from planctl.parsecache import TooLarge, cached_data
from planctl.project import Project
from planctl.safeio import atomic_write_text
from planctl.schema import State, StrictModel
from planctl.triage.model import Cluster, TriageRun

if TYPE_CHECKING:
    from ruamel.yaml import YAML


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Transition(StrictModel):
    task: str
    before: State
    after: State
    why: str | None = None
    at: str = Field(default_factory=utc_now)
    by: str = Field(description="'manual' (planctl set) or 'attempt #N'")


class Check(StrictModel):
    """One expectation judged against a run: what was expected, whether it held, and why."""

    name: str
    passed: bool
    detail: str = ""


Outcome = Literal["running", "passed", "failed", "interrupted"]
AttemptKindName = Literal["run", "verify", "triage"]


class ProcessMark(StrictModel):
    """A process as the kernel knows it, so that a recycled pid is never taken for it."""

    pid: int
    started: int = Field(description="clock ticks after boot when it started")
    boot: str = Field(description="the boot it ran in")

    @classmethod
    def of(cls, mark: process.Mark | None) -> ProcessMark | None:
        return None if mark is None else cls(pid=mark.pid, started=mark.started, boot=mark.boot)

    @property
    def mark(self) -> process.Mark:
        return process.Mark(self.pid, self.started, self.boot)

    @classmethod
    def this_process(cls) -> ProcessMark | None:
        return cls.of(process.mark_of(os.getpid()))


class Attempt(StrictModel):
    number: int
    kind: AttemptKindName = Field(
        "run", description="run: planctl run; verify: a done task re-checked; triage: a full-suite triage run"
    )
    verifies: int | None = Field(None, description="verify: the passing attempt it re-checks")
    task: str
    phase: str
    stamp: str
    outcome: Outcome
    reason: str | None = Field(None, description="why an attempt was interrupted, or what a failed verify did")
    started: str
    finished: str | None = None
    duration_s: float | None = None
    command: str | None = None
    exit_code: int | None = None
    checks: list[Check] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    bundle: str
    inputs_digest: str | None = Field(None, description="SHA-256 of the input manifest (inputs.json in the bundle)")
    git: dict[str, Any] | None = Field(None, description="source commit, branch, dirty state")
    host: str = Field(default_factory=socket.gethostname)
    pid: int = Field(default_factory=os.getpid)
    runner: ProcessMark | None = Field(None, description="the planctl process running it")
    group: ProcessMark | None = Field(None, description="leader of the command's process group (pgid = its pid)")
    groups: list[ProcessMark] | None = Field(None, description="leaders of the process groups of a triage run's chunks")
    triage: TriageRun | None = Field(None, description="a triage run's totals, chunks and slowest tests")

    @property
    def label(self) -> str:
        """``attempt #N``, or ``verify attempt #N`` for attempts of another kind than run."""
        return f"attempt #{self.number}" if self.kind == "run" else f"{self.kind} attempt #{self.number}"


class Records(StrictModel):
    initiative: str
    attempts: list[Attempt] = Field(default_factory=list)
    transitions: list[Transition] = Field(default_factory=list)
    clusters: list[Cluster] = Field(default_factory=list, description="the triage initiative's failure clusters")

    def attempt(self, number: int) -> Attempt:
        return next(a for a in self.attempts if a.number == number)

    def next_number(self, prior_attempts: int) -> int:
        return max([prior_attempts, *(a.number for a in self.attempts)]) + 1

    def reap_orphans(self, root: Path) -> list[Attempt]:
        """Mark attempts whose planctl process died mid-run (on this host) as interrupted, after
        ending what is left of their commands' process groups."""
        here = socket.gethostname()
        orphans = [a for a in self.attempts if a.outcome == "running" and a.host == here and not _runner_alive(a)]
        for attempt in orphans:
            attempt.outcome = "interrupted"
            attempt.reason = f"planctl process {attempt.pid} ended before recording an outcome"
            marker = f"PLANCTL_BUNDLE={root / attempt.bundle}"
            ended = sum(process.end_leftovers(g.mark, marker) for g in [attempt.group, *(attempt.groups or [])] if g)
            if ended:
                attempt.reason += f"; {ended} process(es) of its command were still running and were ended"
        return orphans


def _runner_alive(attempt: Attempt) -> bool:
    if attempt.runner is not None:
        return process.is_running(attempt.runner.mark)
    return process.pid_alive(attempt.pid)  # a record written before planctl kept process marks


# Values a records file may expand to once YAML aliases are followed (planctl writes none; a file
# edited or merged by hand could hold an alias bomb). 5,000 attempts hold about 300,000.
MAX_RECORD_VALUES = 20_000_000


def records_path(project: Project, plan_name: str) -> Path:
    return project.attempts_dir / f"{plan_name}.yaml"


class CorruptRecords(ValueError):
    """A records file that is not the YAML planctl writes."""


def _yaml() -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # ruamel declares it None
    yaml.width = 4096
    return yaml


def _parse(text: str) -> Any:
    """A records text as data (on a parse-cache miss): libyaml, else ruamel, which says what is wrong."""
    from planctl.plainyaml import fast_load

    fast = fast_load(text)
    if fast is not None:
        return fast[0]
    from ruamel.yaml.error import YAMLError

    try:
        return _yaml().load(text)
    except YAMLError as err:
        raise CorruptRecords(str(err)) from None


def load_records(path: Path, initiative: str) -> Records:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Records(initiative=initiative)
    try:
        return Records.model_validate(cached_data(text, _parse, MAX_RECORD_VALUES))
    except (CorruptRecords, ValidationError, TooLarge) as err:
        first = str(err).strip().splitlines()
        raise PlanctlError(f"{path}: corrupt attempt records: {first[0] if first else err}") from None


def save_records(path: Path, records: Records) -> bool:
    data = records.model_dump(mode="json", exclude_none=True)
    buffer = io.StringIO()
    if not data["clusters"]:
        del data["clusters"]  # only the triage initiative has any
    _yaml().dump(data, buffer)
    changed = atomic_write_text(path, buffer.getvalue())
    cached_data(buffer.getvalue(), lambda _: data, MAX_RECORD_VALUES)  # the next read costs no parse
    return changed
