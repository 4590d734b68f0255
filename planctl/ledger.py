"""Ledgers and doc blocks, generated from plans + attempt records.

    ledgers/fix_plan.md             index of initiatives, then per initiative: reproduction,
                                    artifacts root, attempts history, next actions
    ledgers/remediation_tracker.md  executive summary (triage baseline, initiatives), failure clusters
                                    with their plans, remediation plans, per-cluster detail

Docs may embed generated blocks: a line ``<!-- planctl:NAME [PLAN] -->`` and a later line
``<!-- planctl:end -->``; everything between them is replaced by macro NAME of blocks.md.j2.
Markers inside fenced code blocks are left alone, so docs can show them.
"""

from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from planctl.docblocks import refresh_blocks
from planctl.errors import PlanctlError
from planctl.graph import STATUSES, Counts, plan_status, ready_tasks
from planctl.project import Project
from planctl.records import Attempt, Records, load_records, records_path
from planctl.schema import Phase, Plan, Task, TaskState
from planctl.store import PlanFile
from planctl.triage.model import Cluster
from planctl.triage.view import triage_view
from planctl.views import GENERATED_MARKER, environment, render_template, template_errors, view_path

FIX_PLAN = "fix_plan.md"
TRACKER = "remediation_tracker.md"
BLOCKS_TEMPLATE = "blocks.md.j2"
# Block name -> whether it is about one plan (and so takes a PLAN argument).
BLOCKS = {"index": False, "tracker": False, "status": True, "attempts": True, "next_actions": True}


@dataclass(frozen=True)
class Entry:
    """One initiative as the ledgers show it."""

    plan: Plan
    name: str
    file: str
    view: str
    counts: Counts
    status: str
    attempts: list[Attempt]
    ready: list[tuple[Phase, Task]]
    registry: list[Cluster] = field(default_factory=list)  # failure clusters: only the triage initiative has any

    @property
    def blocked(self) -> list[tuple[Phase, Task]]:
        return [(p, t) for p, t in self.plan.tasks() if t.state is TaskState.BLOCKED]

    @property
    def in_progress(self) -> list[tuple[Phase, Task]]:
        return [(p, t) for p, t in self.plan.tasks() if t.state is TaskState.IN_PROGRESS]

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def cluster(self) -> str:
        return ", ".join(self.plan.cluster) or "—"  # sorts after every named cluster

    @property
    def reproduction(self) -> str | None:
        """The plan's reproduction command, else the command of its first runnable task, with
        the guard environment spelled out: one shell line, every part quoted. A command that is
        more than plain words (``&&``, ``$VAR``, quotes) runs as ``bash -c '...'``, so that the
        guard variables reach all of it and nothing in it is read twice."""
        command = self.plan.reproduction or next(
            (t.run.command for _, t in self.plan.tasks() if t.run and t.run.command), None
        )
        if command is None:
            return None
        guards = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.plan.guard_env.items())
        if not _plain_words(command):
            command = f"bash -c {shlex.quote(command)}"
        return f"{guards} {command}" if guards else command


def _plain_words(command: str) -> bool:
    """Whether the shell would read ``command`` as the words it shows, with nothing to expand."""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return " ".join(words) == " ".join(command.split()) and all(shlex.quote(w) == w for w in words)


def entries(project: Project, plan_files: list[PlanFile], records_in_memory: dict[str, Records]) -> list[Entry]:
    found = []
    for plan_file in plan_files:
        plan = plan_file.plan
        counts = Counts.of(t for _, t in plan.tasks())
        records = records_in_memory.get(plan_file.name) or load_records(
            records_path(project, plan_file.name), plan.initiative.id
        )
        ready = ready_tasks(plan)
        found.append(
            Entry(
                plan,
                plan_file.name,
                plan_file.display,
                project.display(view_path(project, plan_file)),
                counts,
                plan_status(counts, len(ready)),
                records.attempts,
                ready,
                records.clusters,
            )
        )
    return found


def ledger_files(project: Project, ledger: list[Entry]) -> dict[Path, str]:
    context = {"entries": ledger, "totals": _totals(ledger), "marker": GENERATED_MARKER, "triage": triage_view(ledger)}
    return {
        project.ledgers_dir / FIX_PLAN: render_template(project, f"{FIX_PLAN}.j2", **context),
        project.ledgers_dir / TRACKER: render_template(project, f"{TRACKER}.j2", **context),
    }


def _totals(ledger: list[Entry]) -> dict[str, object]:
    attempts = [a for e in ledger for a in e.attempts]
    outcomes = {o: sum(a.outcome == o for a in attempts) for o in ("passed", "failed", "interrupted", "running")}
    latest = max(((a.stamp, e, a) for e in ledger for a in e.attempts), default=None, key=lambda t: t[0])
    return {
        "initiatives": len(ledger),
        "by_status": {s: sum(e.status == s for e in ledger) for s in STATUSES},
        "done": sum(e.counts.done for e in ledger),
        "skipped": sum(e.counts.skipped for e in ledger),
        "open": sum(e.counts.open for e in ledger),
        "in_progress": sum(e.counts.in_progress for e in ledger),
        "blocked": sum(e.counts.blocked for e in ledger),
        "total": sum(e.counts.total for e in ledger),
        "attempts": len(attempts),
        "outcomes": outcomes,
        "latest": latest[1:] if latest else None,
    }


def block_files(project: Project, ledger: list[Entry]) -> dict[Path, str]:
    """Docs holding planctl blocks, with the blocks regenerated (docs/ and top-level *.md)."""
    candidates = [*sorted(project.root.glob("*.md")), *sorted((project.root / "docs").rglob("*.md"))]
    found = {}
    with template_errors(project, BLOCKS_TEMPLATE):
        render = functools.partial(_render_block, environment(project).get_template(BLOCKS_TEMPLATE).module, ledger)
        for path in candidates:
            data = path.read_bytes()
            if b"<!-- planctl:" not in data or project.views_dir in path.parents:
                continue  # other docs are never decoded: they may be in any encoding
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as err:
                where = project.display(path)
                raise PlanctlError(f"{where}: not UTF-8 text: byte {err.start} cannot be decoded") from None
            found[path] = refresh_blocks(text, render, project.display(path))
    return found


def _render_block(module: object, ledger: list[Entry], name: str, argument: str | None, where: str) -> str:
    if name not in BLOCKS:
        raise PlanctlError(f"{where}: unknown planctl block '{name}' (known: {', '.join(BLOCKS)})")
    macro = getattr(module, name)
    if not BLOCKS[name]:
        return str(macro(ledger))
    if argument is None:
        raise PlanctlError(f"{where}: planctl block '{name}' needs a plan: <!-- planctl:{name} PLAN -->")
    entry = next((e for e in ledger if argument.lower() in (e.name.lower(), e.plan.initiative.id.lower())), None)
    if entry is None:
        raise PlanctlError(f"{where}: planctl block '{name}': unknown plan '{argument}'")
    return str(macro(entry))
