"""The cluster registry of the triage initiative: failures grouped by signature under stable ids.

After each run (under the project lock):

- a signature seen for the first time opens a new cluster with the next id (C1, C2, ...; after
  the highest historical id the plan declares);
- a known open cluster seen again is *persisting*; a resolved one seen again is *returning*, with
  its old id;
- a cluster's tests are those that failed with its signature since it (re)opened; one that passes
  in a later run is marked passing, and once every one of them has passed, and the cluster was not
  seen, it is *resolved*. Open clusters whose tests did not all run are *unverified*: neither
  persisting nor resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planctl.errors import PlanctlError
from planctl.project import Project
from planctl.records import Attempt, Records, load_records, records_path
from planctl.schema import HistoricalCluster, Task
from planctl.store import PlanFile, read_all
from planctl.triage.model import Cluster, ClusterEvent, Event
from planctl.triage.results import PASSING, Failure

EVENTS = ("new", "persisting", "returning", "resolved", "unverified")


@dataclass
class Findings:
    """What one run found: its failures in collection order, and every test's outcome."""

    failures: list[Failure]
    outcomes: dict[str, str]  # test (or a collector that failed to collect) -> outcome
    collected: list[str]
    evidence: dict[str, str]  # test -> summary of the chunk that ran it
    run_summary: str  # evidence for what no chunk ran (collection errors)
    _collectors: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        for test in self.collected:
            parts = test.split("::")
            self._collectors.update("::".join(parts[:i]) for i in range(1, len(parts)))

    def passed(self, test: str) -> bool:
        """A test passed; a file or class that once failed to collect passes once it collects."""
        outcome = self.outcomes.get(test)
        if outcome is not None:
            return outcome in PASSING
        return test in self._collectors

    def where(self, test: str) -> str:
        return self.evidence.get(test, self.run_summary)


def triage_plan(plan_files: list[PlanFile]) -> PlanFile:
    """The project's triage initiative: the one plan with a ``triage`` section."""
    found = [p for p in plan_files if p.plan.triage is not None]
    if not found:
        raise PlanctlError(
            "no plan has a `triage:` section: add `triage: {}` to the plan of the triage initiative "
            "(its artifacts root receives the runs; see docs/planctl.md, Triage)"
        )
    if len(found) > 1:
        raise PlanctlError(f"several plans have a `triage:` section ({', '.join(p.display for p in found)}); keep one")
    return found[0]


def triage_task(plan_file: PlanFile) -> Task:
    """The task of the triage initiative whose attempts the triage runs are: ``triage.task``, or the
    plan's first task. Its phase names the bundles' folder (``phase_o/<STAMP>/chunks/...``)."""
    settings = plan_file.plan.triage
    assert settings is not None
    if settings.task is not None:
        return plan_file.task(settings.task)
    first = next(plan_file.plan.tasks(), None)
    if first is None:
        raise PlanctlError(
            f"{plan_file.display}: the triage initiative has no task: triage runs are attempts at one "
            "(add a phase with a task, e.g. 'Record a full-suite triage baseline')"
        )
    return first[1]


def number(cluster_id: str) -> int:
    return int(cluster_id[1:])


def registry(recorded: list[Cluster], historical: list[HistoricalCluster]) -> list[Cluster]:
    """The recorded clusters, with the plan's historical clusters not yet recorded, by id."""
    known = {c.id for c in recorded}
    declared = [
        Cluster(id=h.id, origin=h.origin, status="open", tests=list(h.tests), example=h.summary or None)
        for h in historical
        if h.id not in known
    ]
    return sorted([*recorded, *declared], key=lambda c: number(c.id))


def update(
    records: Records, historical: list[HistoricalCluster], findings: Findings, attempt: Attempt
) -> dict[str, str]:
    """Apply one run's findings to the registry in ``records``; return each signature's cluster id
    (keyed by ``str(signature)``)."""
    clusters = registry(records.clusters, historical)
    by_signature: dict[str, list[Failure]] = {}
    for failure in findings.failures:
        by_signature.setdefault(str(failure.signature), []).append(failure)
    next_number = max((number(c.id) for c in clusters), default=0) + 1
    ids: dict[str, str] = {}
    for key, failures in by_signature.items():
        failing = list(dict.fromkeys(f.test for f in failures))
        cluster = next((c for c in clusters if c.signature is not None and str(c.signature) == key), None)
        event: Event
        if cluster is None:
            cluster = Cluster(id=f"C{next_number}", signature=failures[0].signature, status="open", tests=[])
            next_number += 1
            clusters.append(cluster)
            event = "new"
        elif cluster.status == "resolved":
            cluster.status, cluster.tests, cluster.passing = "open", [], []
            event = "returning"
        else:
            event = "persisting"
        cluster.tests += [t for t in failing if t not in cluster.tests]
        cluster.passing = [t for t in cluster.passing if t not in failing]
        cluster.passing += [t for t in cluster.open_tests if t not in failing and findings.passed(t)]
        cluster.example = failures[0].example
        evidence = list(dict.fromkeys(findings.where(t) for t in failing))
        cluster.history.append(_event(attempt, event, len(failing), evidence))
        ids[key] = cluster.id
    for cluster in clusters:
        if cluster.id in ids.values() or cluster.status == "resolved":
            continue
        cluster.passing += [t for t in cluster.open_tests if findings.passed(t)]
        if not cluster.open_tests:
            cluster.status = "resolved"
            evidence = list(dict.fromkeys(findings.where(t) for t in cluster.tests))
            cluster.history.append(_event(attempt, "resolved", 0, evidence))
    records.clusters = sorted(clusters, key=lambda c: number(c.id))
    return ids


def _event(attempt: Attempt, event: Event, tests: int, evidence: list[str]) -> ClusterEvent:
    return ClusterEvent(attempt=attempt.number, stamp=attempt.stamp, event=event, tests=tests, evidence=evidence)


def comparison(clusters: list[Cluster], attempt: int) -> dict[str, list[str]]:
    """Cluster ids by what run #``attempt`` did to them; ``unverified``: open then, but not
    seen and not all of its tests passing in that run."""
    found: dict[str, list[str]] = {event: [] for event in EVENTS}
    for cluster in clusters:
        events = [e for e in cluster.history if e.attempt == attempt]
        if events:
            found[events[-1].event].append(cluster.id)
            continue
        earlier = [e for e in cluster.history if e.attempt < attempt]
        existed = bool(earlier) or cluster.origin is not None  # a historical cluster exists from the start
        if existed and (not earlier or earlier[-1].event != "resolved"):
            found["unverified"].append(cluster.id)
    return found


def triage_runs(attempts: list[Attempt]) -> list[Attempt]:
    """The recorded triage runs, oldest first (a run still in progress is left out)."""
    return [a for a in attempts if a.kind == "triage" and a.triage is not None and a.outcome != "running"]


def cluster_tests(project: Project, ids: list[str]) -> dict[str, list[str]]:
    """The tests of each named cluster that the project's triage records (or its plan's historical
    declarations) know; unknown ids are left out."""
    plan_file = triage_plan(read_all(project))
    records = load_records(records_path(project, plan_file.name), plan_file.plan.initiative.id)
    assert plan_file.plan.triage is not None
    known = {c.id: c.tests for c in registry(records.clusters, plan_file.plan.triage.historical_clusters)}
    return {cid: known[cid] for cid in ids if cid in known}
