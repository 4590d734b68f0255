"""The clusters as people read them: the remediation tracker's triage sections and
`planctl triage show`. Built from the ledger entries (plans and their records), nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planctl.errors import PlanctlError
from planctl.records import Attempt
from planctl.schema import Task
from planctl.triage.clusters import comparison, number, registry, triage_runs
from planctl.triage.model import COUNTS, Cluster, ClusterEvent

if TYPE_CHECKING:
    from planctl.ledger import Entry

KEYS = ("collected", *COUNTS, "not_run")


@dataclass(frozen=True)
class ClusterRow:
    cluster: Cluster
    plans: list[Entry]  # plans whose `cluster` names it
    tasks: list[tuple[Entry, Task]]  # tasks that expect it to pass

    @property
    def id(self) -> str:
        return self.cluster.id

    @property
    def first_seen(self) -> ClusterEvent | None:
        seen = self.cluster.seen
        return seen[0] if seen else None

    @property
    def last_seen(self) -> ClusterEvent | None:
        seen = self.cluster.seen
        return seen[-1] if seen else None

    @property
    def signature(self) -> str:
        if self.cluster.signature is not None:
            return str(self.cluster.signature)
        return f"historical — {self.cluster.example or self.cluster.origin}"

    def as_json(self) -> dict[str, Any]:
        return self.cluster.model_dump(mode="json", exclude_none=True) | {
            "open_tests": self.cluster.open_tests,
            "plans": [{"initiative": e.plan.initiative.id, "status": e.status, **vars(e.counts)} for e in self.plans],
            "tasks": [
                {"initiative": e.plan.initiative.id, "task": t.id, "state": t.state.value} for e, t in self.tasks
            ],
        }


@dataclass(frozen=True)
class TriageView:
    entry: Entry  # the triage initiative
    runs: list[Attempt]  # recorded triage runs, oldest first
    clusters: list[ClusterRow]
    dangling: list[tuple[Entry, str]]  # plans or tasks naming a cluster the triage does not know

    @property
    def latest(self) -> Attempt | None:
        return self.runs[-1] if self.runs else None

    @property
    def previous(self) -> Attempt | None:
        latest = self.latest
        if latest is None or latest.triage is None or latest.triage.compared_with is None:
            return None
        return next((a for a in self.runs if a.number == latest.triage.compared_with), None)

    @property
    def changes(self) -> dict[str, list[str]]:
        """Cluster ids by what the latest run did to them."""
        latest = self.latest
        return comparison([r.cluster for r in self.clusters], latest.number) if latest else {}

    @property
    def delta(self) -> dict[str, int]:
        latest, previous = self.latest, self.previous
        if latest is None or previous is None or latest.triage is None or previous.triage is None:
            return {}
        now, then = latest.triage.totals, previous.triage.totals
        return {key: getattr(now, key) - getattr(then, key) for key in KEYS}

    def row(self, cluster_id: str) -> ClusterRow:
        found = next((r for r in self.clusters if r.id == cluster_id.upper()), None)
        if found is None:
            known = ", ".join(r.id for r in self.clusters) or "none yet"
            raise PlanctlError(f"unknown cluster '{cluster_id}' (clusters: {known})")
        return found

    def by_status(self, status: str) -> list[ClusterRow]:
        return [r for r in self.clusters if r.cluster.status == status]


def triage_view(ledger: list[Entry]) -> TriageView | None:
    """The triage initiative's runs and clusters with the plans linked to them, or None when no
    plan has a ``triage`` section."""
    owners = [e for e in ledger if e.plan.triage is not None]
    if not owners:
        return None
    if len(owners) > 1:
        raise PlanctlError(f"several plans have a `triage:` section ({', '.join(e.file for e in owners)}); keep one")
    entry = owners[0]
    assert entry.plan.triage is not None
    clusters = registry(entry.registry, entry.plan.triage.historical_clusters)
    known = {c.id for c in clusters}
    rows = [
        ClusterRow(
            cluster,
            [e for e in ledger if cluster.id in e.plan.cluster],
            [(e, t) for e in ledger for _, t in e.plan.tasks() if t.run and cluster.id in t.run.expect.clusters],
        )
        for cluster in clusters
    ]
    named = [(e, c) for e in ledger for c in e.plan.cluster] + [
        (e, c) for e in ledger for _, t in e.plan.tasks() if t.run for c in t.run.expect.clusters
    ]
    dangling = sorted({(e.plan.initiative.id, c): (e, c) for e, c in named if c not in known}.values(), key=_order)
    return TriageView(entry, triage_runs(entry.attempts), rows, dangling)


def _order(pair: tuple[Entry, str]) -> tuple[int, str]:
    return number(pair[1]), pair[0].plan.initiative.id
