"""What triage stores in the attempt records of its initiative (attempts/<plan>.yaml): each run is
an attempt of kind ``triage`` holding a :class:`TriageRun`, and the records hold the cluster
registry (:class:`Cluster`), one entry per failure signature ever seen, with its history."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from planctl.schema import CLUSTER_PATTERN, StrictModel

ChunkEnd = Literal["completed", "timed out", "crashed", "interrupted", "not started"]
Event = Literal["new", "persisting", "returning", "resolved"]
COUNTS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")


class Signature(StrictModel):
    """What makes failures one cluster."""

    type: str = Field(description="exception type, e.g. AssertionError; Timeout or Crash for a stopped test")
    message: str = Field(description="first line of the message with numbers, paths, addresses and tensors normalised")
    frame: str = Field(description="innermost frame inside the project: path::function ('' when there is none)")

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" + (f" — {self.frame}" if self.frame else "")


class Totals(StrictModel):
    """Counted as pytest's summary line counts them (a test whose call passes and teardown errors is
    one passed and one error), plus the tests that never got a result."""

    collected: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    not_run: int = Field(0, description="collected but without a result: their chunk stopped or died first")

    def line(self) -> str:
        """``15 collected, 5 passed, 1 not run``: the counts that are not zero."""
        counts = [f"{getattr(self, key)} {key.replace('_', ' ')}" for key in (*COUNTS, "not_run") if getattr(self, key)]
        return ", ".join([f"{self.collected} collected", *counts])


class ChunkResult(StrictModel):
    name: str
    outcome: ChunkEnd
    tests: int
    expected_s: float = Field(description="duration predicted from earlier runs")
    duration_s: float | None = None
    exit_code: int | None = None
    reason: str | None = Field(None, description="why it did not complete")
    not_run: int = 0
    stopped_in: str | None = Field(None, description="the test that was running when the chunk stopped or died")


class SlowTest(StrictModel):
    test: str
    seconds: float


class TriageRun(StrictModel):
    args: list[str] = Field(description="pytest arguments")
    split: Literal["balanced", "file"]
    jobs: int
    timeout_per_chunk: float
    totals: Totals = Field(default_factory=Totals)
    chunks: list[ChunkResult] = Field(default_factory=list)
    slowest: list[SlowTest] = Field(default_factory=list)
    timed: int = Field(0, description="collected tests whose duration an earlier run recorded (chunks balanced by it)")
    compared_with: int | None = Field(None, description="the earlier triage attempt this run is compared with")
    clusters: dict[str, list[str]] = Field(
        default_factory=dict,
        description="cluster ids by what this run did to them: new, persisting, returning, resolved, unverified",
    )

    def trailers(self) -> dict[str, str | None]:
        """What a triage attempt's commit message adds: its totals and its cluster changes."""
        changes = "; ".join(f"{event} {', '.join(ids)}" for event, ids in self.clusters.items() if ids)
        return {"Totals": self.totals.line(), "Clusters": changes or None}


class ClusterEvent(StrictModel):
    attempt: int
    stamp: str
    event: Event
    tests: int = Field(description="its tests failing in that run")
    evidence: list[str] = Field(default_factory=list, description="summaries of the chunks that ran its tests")


class Cluster(StrictModel):
    id: str = Field(pattern=CLUSTER_PATTERN)
    signature: Signature | None = Field(None, description="None for a historical cluster declared without one")
    origin: str | None = Field(None, description="for a historical cluster: where it was recorded")
    status: Literal["open", "resolved"]
    tests: list[str] = Field(description="tests that failed with this signature since it (re)opened")
    passing: list[str] = Field(default_factory=list, description="those of them that passed in a later run")
    example: str | None = Field(None, description="one failure as pytest reported it: location and message")
    history: list[ClusterEvent] = Field(default_factory=list)

    @property
    def seen(self) -> list[ClusterEvent]:
        return [e for e in self.history if e.event != "resolved"]

    @property
    def open_tests(self) -> list[str]:
        passing = set(self.passing)
        return [t for t in self.tests if t not in passing]
