"""What a pytest process of a triage run reported (results.jsonl, see pytest_plugin.py), read back:
per-test outcomes, failures, pytest's summary counts, and how the chunk ended.

A chunk that timed out or crashed is judged by what it wrote before it stopped: tests that finished
keep their outcome; the test it was in counts as failed (a ``Timeout`` or ``Crash`` failure, placed
by the stack dump where there is one); the tests it never reached are ``not run``, never passed.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planctl.triage.model import COUNTS, ChunkEnd, ChunkResult, Signature
from planctl.triage.signature import dumped_frames, frame_name, is_project_file, library_roots, normalise

# pytest's summary categories, as planctl's totals name them.
_CATEGORY = {"passed": "passed", "failed": "failed", "error": "errors", "skipped": "skipped"} | {
    "xfailed": "xfailed",
    "xpassed": "xpassed",
}
# A test's outcome is the worst of its reports' categories.
_SEVERITY = ["failed", "error", "xpassed", "xfailed", "skipped", "passed"]
PASSING = ("passed", "xpassed")
NOT_RUN = "not run"
_COMPLETED_EXITS = (0, 1, 5)  # pytest: all passed, some failed, no tests collected


@dataclass
class Failure:
    """One failing report (or a collection error, or a test cut short by a timeout or crash)."""

    test: str
    when: str  # setup, call, teardown, collect, timeout, crash
    type: str
    message: str
    frames: list[dict[str, Any]]  # outermost first: {"frame": "path::function", "line": n, "project": bool}
    chunk: str | None = None

    @property
    def signature(self) -> Signature:
        inside = [f for f in self.frames if f.get("project")]
        return Signature(type=self.type, message=normalise(self.message), frame=inside[-1]["frame"] if inside else "")

    @property
    def example(self) -> str:
        """As read in a report: the test, the phase, the exception as raised and where."""
        first = next((line.strip() for line in self.message.splitlines() if line.strip()), "")
        inside = [f for f in self.frames if f.get("project")]
        text = f"{self.test} ({self.when}): {self.type}: {first}"
        if inside:
            path, _, function = inside[-1]["frame"].partition("::")
            text += f" — {path}:{inside[-1]['line']} in {function}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "when": self.when,
            "type": self.type,
            "message": self.message,
            "frames": self.frames,
            "chunk": self.chunk,
        }


@dataclass
class TestResult:
    test: str
    outcome: str  # passed failed error skipped xfailed xpassed, or "not run"
    duration: float
    chunk: str


@dataclass
class ResultsFile:
    """results.jsonl of one pytest process, read as it grows (a line cut short by a kill is
    left pending, never misread)."""

    path: Path
    offset: int = 0
    pending: bytes = b""
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    collect_errors: list[dict[str, Any]] = field(default_factory=list)
    exit_status: int | None = None
    failures_seen: int = 0

    def read(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self._take(event)

    def _take(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start":
            self.started.append(event["nodeid"])
        elif kind == "finish":
            self.finished.append(event["nodeid"])
        elif kind == "report":
            self.reports.setdefault(event["nodeid"], []).append(event)
            self.failures_seen += event["outcome"] == "failed"
        elif kind == "collect_error":
            self.collect_errors.append(event)
        elif kind == "session_finish":
            self.exit_status = event["exitstatus"]


@dataclass
class ChunkOutcome:
    result: ChunkResult
    tests: list[TestResult]
    failures: list[Failure]
    counts: Counter[str]  # pytest's summary categories, as in Totals


def failure_from(event: dict[str, Any], test: str, when: str, chunk: str | None) -> Failure:
    data = event.get("failure") or {}
    return Failure(
        test=test,
        when=when,
        type=str(data.get("type", "Error")),
        message=str(data.get("message", "")),
        frames=list(data.get("frames", [])),
        chunk=chunk,
    )


def judge_chunk(
    name: str,
    tests: list[str],
    expected_s: float,
    results: ResultsFile,
    *,
    exit_code: int | None,
    stopped: str | None,
    duration_s: float | None,
    stacks: str,
    log_tail: str,
    rootdir: Path,
    timeout_s: float,
) -> ChunkOutcome:
    """``stopped``: None (it ended by itself), "timeout", "signal" (planctl was interrupted) or
    "not started"."""
    results.read()
    finished = set(results.finished)
    in_progress = next((t for t in reversed(results.started) if t not in finished), None)
    if stopped == "signal" and results.exit_status is not None:
        # pytest had finished its session; only the process's exit was cut short
        stopped, exit_code = None, results.exit_status
    outcome: ChunkEnd
    reason: str | None
    if stopped == "not started":
        outcome, reason = "not started", "the run was interrupted before this chunk started"
    elif stopped == "timeout":
        outcome, reason = "timed out", f"stopped after the chunk timeout of {timeout_s:g} s"
        if results.exit_status is not None:
            reason += ": pytest had finished its tests, but the process did not exit (a thread or child kept it)"
    elif stopped == "signal":
        outcome, reason = "interrupted", "the run was interrupted"
    elif exit_code in _COMPLETED_EXITS:
        outcome, reason = "completed", None
    else:
        outcome, reason = "crashed", f"pytest ended with {describe_exit(exit_code)}"
    counts: Counter[str] = Counter()
    failures: list[Failure] = []
    outcomes: dict[str, TestResult] = {}
    for test in tests:
        reports = results.reports.get(test, [])
        for report in reports:
            if report.get("counts", True) and report["category"] in _CATEGORY:
                counts[_CATEGORY[report["category"]]] += 1
            if report["outcome"] == "failed":
                failures.append(failure_from(report, test, report["when"], name))
        duration = round(sum(r["duration"] for r in reports), 6)
        if test in finished:
            categories = [r["category"] for r in reports if r["category"] in _SEVERITY]
            worst = min(categories, key=_SEVERITY.index) if categories else NOT_RUN
            outcomes[test] = TestResult(test, worst, duration, name)
        else:
            outcomes[test] = TestResult(test, NOT_RUN, duration, name)
    if in_progress in outcomes and outcome in ("timed out", "crashed"):
        cut_short = _cut_short(in_progress, outcome, stacks or log_tail, exit_code, timeout_s, rootdir, name)
        failures.append(cut_short)
        counts["failed"] += 1
        spent = (duration_s or 0.0) - sum(r.duration for r in outcomes.values())
        outcomes[in_progress] = TestResult(in_progress, "failed", round(max(spent, 0.0), 3), name)
    not_run = sum(r.outcome == NOT_RUN for r in outcomes.values())
    counts["not_run"] += not_run
    result = ChunkResult(
        name=name,
        outcome=outcome,
        tests=len(tests),
        expected_s=expected_s,
        duration_s=duration_s,
        exit_code=exit_code,
        reason=reason,
        not_run=not_run,
        stopped_in=in_progress if outcome in ("timed out", "crashed", "interrupted") else None,
    )
    return ChunkOutcome(result, list(outcomes.values()), failures, counts)


def _cut_short(
    test: str, outcome: str, dump: str, exit_code: int | None, timeout_s: float, rootdir: Path, chunk: str
) -> Failure:
    """The failure of the test a chunk was in when it timed out or died, placed by the stack dump."""
    libraries = library_roots()
    frames = [
        {
            "frame": frame_name(path, function, rootdir),
            "line": line,
            "project": is_project_file(path, rootdir, libraries),
        }
        for path, line, function in reversed(dumped_frames(dump))
    ]
    if outcome == "timed out":
        return Failure(
            test, "timeout", "Timeout", f"did not finish within the chunk timeout of {timeout_s:g} s", frames, chunk
        )
    return Failure(
        test, "crash", "Crash", f"the test process died during the test: {describe_exit(exit_code)}", frames, chunk
    )


def describe_exit(exit_code: int | None) -> str:
    if exit_code is None:
        return "no exit status"
    if exit_code < 0:
        return (
            f"signal {signal.Signals(-exit_code).name}"
            if -exit_code in signal.valid_signals()
            else f"signal {-exit_code}"
        )
    meaning = {2: "interrupted", 3: "internal error", 4: "usage error"}.get(exit_code)
    return f"exit status {exit_code}" + (f" ({meaning})" if meaning else "")


def collect_failures(results: ResultsFile) -> list[Failure]:
    results.read()
    return [failure_from(e, e["nodeid"], "collect", None) for e in results.collect_errors]


def empty_counts() -> Counter[str]:
    return Counter({key: 0 for key in (*COUNTS, "not_run")})
