"""How long `planctl report` takes for 50 plans holding 5,000 attempts (the issue's target: < 10 s).

Builds a throwaway project: 50 plans of 4 phases x 5 tasks (pytest tasks with junit counts, gradient
probes whose checks record six named values and a loss, check-only tasks; dependencies inside and
between phases; done, skipped and open tasks), 100 attempts per plan (runs and verifies, one in ten
failing), each with an evidence bundle holding summary.md, output.log and inputs.json, written
through planctl's own record writer, as `planctl run` leaves them. One source file is then edited,
so that some done tasks are stale. The report has 750 metric plots and 10,000 evidence files.

Then it times the real console entry point (interpreter start included), each case --repeat times:

- cold: into a new, empty folder: every page and plot drawn, every evidence file linked in;
- warm: again into the same folder, nothing changed (unchanged files are left alone);
- incremental: one new attempt (bundle and record) added to one plan, then into the same folder;
- fresh clone (once): cold, with planctl's parse cache ($PLANCTL_CACHE_DIR, here a folder of the
  benchmark) emptied first, as on a new machine, so every plan and records file is parsed from YAML.

Each line gives the best and the median wall-clock time and CPU time (user + system, of planctl and
any process it starts). On a shared machine the wall-clock time grows with the load, the CPU time
much less; the load average is printed with each case.

    python benchmarks/bench_planctl_report.py [--plans 50] [--attempts 5000] [--repeat 3]
        [--keep DIR | --project DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from planctl.freshness import MANIFEST_NAME, task_manifest
from planctl.project import Project
from planctl.records import Attempt, Check, Records, load_records, records_path, save_records
from planctl.store import PlanFile, read_plan

PHASES = "ABCD"
TASKS_PER_PHASE = 5
CELL = ("cell_a", "cell_b", "cell_c", "cell_alpha", "cell_beta", "cell_gamma")


def plan_text(index: int) -> str:
    lines = [
        f"initiative: {{id: BENCH-{index:03d}, title: Benchmark plan {index} with a realistic shape}}",
        f"artifacts_root: reports/bench-{index:03d}",
        "guard_env: {CUDA_VISIBLE_DEVICES: '-1'}",
        f"cluster: C{index % 20}",
        "phases:",
    ]
    for p, phase in enumerate(PHASES):
        lines += [f"  - id: {phase}", f"    title: Phase {phase} of plan {index}", "    goal: Move the plan forward."]
        if p:
            lines.append(f"    requires: [{PHASES[p - 1]}]")
        lines.append("    tasks:")
        for t in range(1, TASKS_PER_PHASE + 1):
            task = f"{phase}{t}"
            state = "[D]" if p < 2 or (p == 2 and t <= 2) else "[ ]"
            if p == 1 and t == 5:
                state = "[S]"
            lines += [
                f"      - id: {task}",
                f"        description: Task {task} of plan {index}",
                f"        state: '{state}'",
            ]
            if state == "[S]":
                lines.append("        reason: not needed after the probe")
            if t > 1 and t % 2 == 0:
                lines.append(f"        depends_on: [{phase}{t - 1}]")
            kind = t % 3
            if kind == 0:
                lines += [
                    "        run:",
                    f"          command: pytest -q tests/test_plan_{index}.py",
                    "          expect: {junit: {passed: 3, failed: 0}}",
                ]
            elif kind == 1:
                lines += [
                    "        run:",
                    "          command: python tools/probe.py --out $PLANCTL_BUNDLE/gradients.json",
                    "          expect:",
                    "            metrics:",
                    "              - {file: $PLANCTL_BUNDLE/gradients.json, select: results.0.loss, op: '>', value: 0}",
                    "              - {file: $PLANCTL_BUNDLE/gradients.json, select: results.0.gradients, op: '>', "
                    "value: 1e-6, abs: true}",
                ]
            else:
                lines += ["        run:", "          expect: {files: [{path: tools/probe.py, contains: probe}]}"]
    return "\n".join(lines) + "\n"


def metrics_for(task_kind: int, attempt: int, failed: bool) -> dict:
    if task_kind == 0:
        passed = 2 if failed else 3
        return {"junit": {"tests": 3, "passed": passed, "failed": 3 - passed, "errors": 0, "skipped": 0}}
    if task_kind == 1:
        values = [(1000.0 + 37 * attempt) * (k + 1) * (-1) ** k for k in range(6)]
        labels = [f"results.0.gradients.{name}" for name in CELL]
        return {
            "$PLANCTL_BUNDLE/gradients.json:results.0.loss": {
                "count": 1,
                "min": 1e5 + attempt,
                "max": 1e5 + attempt,
                "values": [1e5 + attempt],
                "labels": ["results.0.loss"],
            },
            "$PLANCTL_BUNDLE/gradients.json:results.0.gradients": {
                "count": 6,
                "min": min(values),
                "max": max(values),
                "values": values,
                "labels": labels,
            },
        }
    return {}


def build(root: Path, plans: int, attempts: int) -> None:
    (root / "pkg").mkdir(parents=True)
    for name in ("__init__.py", "physics.py", "detector.py", "crystal.py"):
        (root / "pkg" / name).write_text(f"# {name}\n" + "x = 1\n" * 200)
    (root / "tools").mkdir()
    (root / "tools" / "probe.py").write_text("# the probe\n")
    (root / "tests").mkdir()
    project = Project(root)
    for index in range(plans):
        (root / "tests" / f"test_plan_{index}.py").write_text("def test(): pass\n")
        path = root / "plans" / f"bench-{index:03d}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(plan_text(index))
        plan_file = read_plan(project, path)
        records = Records(initiative=plan_file.plan.initiative.id)
        for number in range(1, attempts // plans + 1):
            records.attempts.append(new_attempt(project, plan_file, number))
        save_records(records_path(project, plan_file.name), records)
    # An edit after the attempts: tasks whose inputs include pkg/ are stale now.
    (root / "pkg" / "physics.py").write_text((root / "pkg" / "physics.py").read_text() + "y = 2\n")


LOG = "".join(f"tests/test_x.py::test_{i} PASSED\n" for i in range(120))


def new_attempt(project: Project, plan_file: PlanFile, number: int) -> Attempt:
    """Attempt #number of a plan, with its evidence bundle written."""
    runnable = [(phase, task) for phase, task in plan_file.plan.tasks() if phase.id in "ABC"]
    phase, task = runnable[number % len(runnable)]
    failed = number % 10 == 0
    verify = task.state.value == "[D]" and number % 5 == 0
    stamp = f"2026010{number % 9}T{number:06d}Z"
    bundle = project.root / plan_file.plan.bundle_root / f"phase_{phase.id.lower()}" / stamp
    bundle.mkdir(parents=True, exist_ok=True)  # a run of the benchmark stopped halfway may have left it
    manifest = task_manifest(project, plan_file, task) if task.run else None
    (bundle / "summary.md").write_text(f"# {plan_file.plan.initiative.id} {task.id} attempt #{number}\n\n" * 8)
    (bundle / "output.log").write_text(LOG)
    if manifest is not None:
        (bundle / MANIFEST_NAME).write_text(json.dumps(manifest.as_json()))
    return Attempt(
        number=number,
        kind="verify" if verify else "run",
        verifies=number - len(runnable) if verify and number > len(runnable) else None,
        task=task.id,
        phase=phase.id,
        stamp=bundle.name,
        outcome="failed" if failed else "passed",
        reason="regressed since attempt #1" if failed and verify else None,
        started=f"2026-01-0{number % 9 + 1}T00:00:00Z",
        finished=f"2026-01-0{number % 9 + 1}T00:01:00Z",
        duration_s=12.5,
        command=task.run.command if task.run else None,
        exit_code=1 if failed else 0,
        checks=[
            Check(name="exit code", passed=not failed, detail="expected 0"),
            Check(name="junit passed", passed=not failed, detail="expected 3, got 3"),
        ],
        metrics=metrics_for(int(task.id[1:]) % 3, number, failed),
        bundle=project.display(bundle),
        inputs_digest=manifest.digest if manifest else None,
        git={"commit": "0" * 40, "branch": "main", "dirty": False},
    )


def add_attempt(root: Path) -> None:
    """One more attempt of the first plan, recorded as a run records it."""
    project = Project(root)
    plan_file = read_plan(project, root / "plans" / "bench-000.yaml")
    path = records_path(project, plan_file.name)
    records = load_records(path, plan_file.plan.initiative.id)
    records.attempts.append(new_attempt(project, plan_file, max(a.number for a in records.attempts) + 1))
    save_records(path, records)


Timing = tuple[float, float]  # wall-clock seconds, CPU seconds


def timed(root: Path, out: Path) -> tuple[Timing, str]:
    """Wall-clock and CPU seconds (planctl and the processes it started), and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "planctl", "--root", root, "report", "--out", out],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return (wall, cpu), done.stdout.strip()


def show(label: str, timings: list[Timing]) -> None:
    walls, cpus = [w for w, _ in timings], [c for _, c in timings]
    print(
        f"{label + ':':13} wall best {min(walls):6.2f} s, median {statistics.median(walls):6.2f} s;  "
        f"CPU best {min(cpus):6.2f} s, median {statistics.median(cpus):6.2f} s   "
        f"(n={len(timings)}, load {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case but the fresh clone")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--keep", type=Path, help="build the project in this (new) folder and keep it")
    where.add_argument("--project", type=Path, help="reuse a folder made with --keep (incremental runs add attempts)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.project or args.keep or Path(scratch)
        root = folder / "project"
        cache = folder / "parse-cache"  # planctl's parse cache, for this benchmark alone
        os.environ["PLANCTL_CACHE_DIR"] = str(cache)
        if args.project is None:
            start = time.perf_counter()
            build(root, args.plans, args.attempts)
            print(f"built {args.plans} plans, {args.attempts} attempts in {time.perf_counter() - start:.1f} s")
        print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} before the runs", flush=True)
        sites = folder / "sites"
        shutil.rmtree(sites, ignore_errors=True)
        timed(root, sites / "warm-up")  # the parse cache filled, the files in the page cache
        cold = [timed(root, sites / f"cold-{i}") for i in range(args.repeat)]
        print(cold[-1][1])
        show("cold", [t for t, _ in cold])
        show("warm", [timed(root, sites / "cold-0")[0] for _ in range(args.repeat)])
        incremental = []
        for _ in range(args.repeat):
            add_attempt(root)
            incremental.append(timed(root, sites / "cold-0")[0])
        show("incremental", incremental)
        shutil.rmtree(cache)
        show("fresh clone", [timed(root, sites / "fresh-clone")[0]])
        files = sum(len(f) for _, _, f in os.walk(sites / "cold-0"))
        print(f"site: {files} files; target: cold < 10 s")


if __name__ == "__main__":
    main()
