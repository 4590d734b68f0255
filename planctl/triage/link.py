"""`planctl triage link CLUSTER PLAN [TASK]`: the plan YAML records which plan fixes a cluster
(its ``cluster`` key) and, with a task, that the task proves it (``cluster`` in the task's
``run.expect.clusters``: the task's pytest run must show every test of the cluster passing).

The edit is made in the round-trip document, so comments and layout stay; the views are rendered
before anything is written, under the project lock."""

from __future__ import annotations

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from planctl.errors import PlanctlError
from planctl.project import Project
from planctl.publish import derived_files, write_derived
from planctl.records import load_records, records_path
from planctl.safeio import project_lock
from planctl.schema import Plan
from planctl.store import PlanFile, put_after, read_all, save_plan, select_plan
from planctl.triage.clusters import registry, triage_plan


def link_cluster(project: Project, cluster_id: str, plan_name: str, task_id: str | None) -> tuple[PlanFile, bool]:
    """Record the link; return the plan and whether anything changed."""
    cluster_id = cluster_id.upper()
    with project_lock(project.lock_path):
        plan_files = read_all(project)
        owner = triage_plan(plan_files)
        records = load_records(records_path(project, owner.name), owner.plan.initiative.id)
        assert owner.plan.triage is not None
        known = [c.id for c in registry(records.clusters, owner.plan.triage.historical_clusters)]
        if cluster_id not in known:
            raise PlanctlError(f"unknown cluster '{cluster_id}' (clusters: {', '.join(known) or 'none yet'})")
        plan_file = select_plan(project, plan_files, plan_name)
        changed = _link_plan(plan_file.doc, cluster_id)
        if task_id is not None:
            changed = _link_task(plan_file, task_id, cluster_id) or changed
        if not changed:
            return plan_file, False
        plan_file.plan = Plan.model_validate(plan_file.doc)
        views = derived_files(project, plan_files)
        save_plan(plan_file)
        write_derived(views)
    return plan_file, True


def _link_plan(doc: CommentedMap, cluster_id: str) -> bool:
    current = doc.get("cluster")
    if current == cluster_id or (isinstance(current, list) and cluster_id in current):
        return False
    if current is None:  # placed where the schema lists it: after the run settings, before the context
        before = [k for k in ("initiative", "artifacts_root", "guard_env", "reproduction") if k in doc]
        put_after(doc, "cluster", cluster_id, after=before[-1] if before else "initiative")
    elif isinstance(current, list):
        current.append(cluster_id)
    else:  # a second cluster: the key becomes a list
        doc["cluster"] = _flow([current, cluster_id])
    return True


def _link_task(plan_file: PlanFile, task_id: str, cluster_id: str) -> bool:
    task = plan_file.task(task_id)
    if task.run is None or task.run.command is None:
        raise PlanctlError(
            f"{plan_file.display}: task {task_id} has no command: a cluster check reads the junit XML of the "
            "task's pytest run, so give it a `run.command` that runs the cluster's tests first"
        )
    node = next(t for phase in plan_file.doc["phases"] for t in phase.get("tasks", []) if t["id"] == task_id)
    run = node["run"]
    if "expect" not in run:
        run["expect"] = CommentedMap()
    expect = run["expect"]
    clusters = expect.get("clusters")
    if clusters is None:
        expect["clusters"] = _flow([cluster_id])
        return True
    if isinstance(clusters, str):
        if clusters == cluster_id:
            return False
        expect["clusters"] = _flow([clusters, cluster_id])
        return True
    if cluster_id in clusters:
        return False
    clusters.append(cluster_id)
    return True


def _flow(items: list[str]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq
