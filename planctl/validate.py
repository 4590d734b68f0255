"""Whole-project checks: schema, structure, references to repository files, templates, and the
triage: one triage initiative at most, cluster ids that its records know.

A missing ``source`` reference is an error; a missing ``evidence`` reference (an artifact of a past
or future run, typically under reports/) is a warning, since evidence may not be checked out.
"""

from __future__ import annotations

from planctl.errors import Diagnostic, PlanctlError
from planctl.project import Project
from planctl.records import load_records, records_path
from planctl.refs import check_reference
from planctl.store import PlanFile, inspect_plan
from planctl.triage.clusters import registry, triage_task


def validate_project(project: Project) -> tuple[list[PlanFile], list[Diagnostic]]:
    plan_files: list[PlanFile] = []
    diagnostics: list[Diagnostic] = []
    for path in project.plan_paths():
        plan_file, problems = inspect_plan(project, path)
        diagnostics += problems
        if plan_file is not None:
            plan_files.append(plan_file)
            diagnostics += _reference_problems(project, plan_file) + _run_spec_problems(project, plan_file)
    diagnostics += _duplicate_initiatives(plan_files) + _triage_problems(project, plan_files)
    return plan_files, diagnostics


def _at(plan_file: PlanFile, loc: tuple[str | int, ...], message: str, severity: str = "error") -> Diagnostic:
    return Diagnostic(plan_file.display, *plan_file.position(loc), message, severity)


def _reference_problems(project: Project, plan_file: PlanFile) -> list[Diagnostic]:
    found = []
    for i, dep in enumerate(plan_file.plan.context.dependencies):
        severity = "warning" if dep.kind == "evidence" else "error"
        for problem in check_reference(project.root, dep.ref):
            found.append(
                _at(
                    plan_file,
                    ("context", "dependencies", i, "ref"),
                    f"{dep.kind} dependency '{dep.ref}': {problem}",
                    severity,
                )
            )
    return found


def _run_spec_problems(project: Project, plan_file: PlanFile) -> list[Diagnostic]:
    """Templates and working directories that runs would not find."""
    available: set[str] | None = None  # listed only for a plan that renders templates (jinja2 loads slowly)
    found = []
    for i, phase in enumerate(plan_file.plan.phases):
        for j, task in enumerate(phase.tasks):
            if task.run is None:
                continue
            at = ("phases", i, "tasks", j, "run")
            if not (project.root / task.run.cwd).is_dir():
                message = f"task {task.id}: working directory '{task.run.cwd}' does not exist"
                found.append(_at(plan_file, (*at, "cwd"), message))
            for k, artifact in enumerate(task.run.render):
                if available is None:
                    from planctl.views import environment

                    available = set(environment(project).list_templates())
                if artifact.template not in available:
                    message = f"task {task.id}: template '{artifact.template}' not found"
                    found.append(_at(plan_file, (*at, "render", k, "template"), message))
    return found


def _duplicate_initiatives(plan_files: list[PlanFile]) -> list[Diagnostic]:
    first_seen: dict[str, PlanFile] = {}
    found = []
    for plan_file in plan_files:
        initiative = plan_file.plan.initiative.id
        if initiative in first_seen:
            found.append(
                _at(
                    plan_file,
                    ("initiative", "id"),
                    f"initiative {initiative} is also defined in {first_seen[initiative].display}",
                )
            )
        first_seen.setdefault(initiative, plan_file)
    return found


def _triage_problems(project: Project, plan_files: list[PlanFile]) -> list[Diagnostic]:
    """One triage initiative at most, with a task for its runs; cluster ids that its records and
    declarations know."""
    owners = [p for p in plan_files if p.plan.triage is not None]
    found = [
        _at(p, ("triage",), f"a second triage initiative (the first is {owners[0].display}): keep one")
        for p in owners[1:]
    ]
    if len(owners) > 1:
        return found  # which records would know a cluster is the question to settle first
    known: set[str] | None = None
    if owners:
        owner = owners[0]
        assert owner.plan.triage is not None
        try:
            triage_task(owner)
        except PlanctlError as err:  # no task for the runs, or an unknown one named
            where = ("triage", "task") if owner.plan.triage.task else ("triage",)
            found.append(_at(owner, where, str(err).removeprefix(f"{owner.display}: ")))
        records = load_records(records_path(project, owner.name), owner.plan.initiative.id)
        known = {c.id for c in registry(records.clusters, owner.plan.triage.historical_clusters)}
    for plan_file in plan_files:
        named = [(("cluster",), c) for c in plan_file.plan.cluster] + [
            (("phases", i, "tasks", j, "run", "expect", "clusters"), c)
            for i, phase in enumerate(plan_file.plan.phases)
            for j, task in enumerate(phase.tasks)
            if task.run
            for c in task.run.expect.clusters
        ]
        for loc, cluster in named:
            if known is None:
                message = f"cluster {cluster}: no plan has a `triage:` section, so no triage records know it"
            elif cluster not in known:
                message = f"cluster {cluster} is not among the triage clusters of {owners[0].display}"
            else:
                continue
            found.append(_at(plan_file, loc, message, "warning"))
    return found
