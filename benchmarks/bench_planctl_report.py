"""How long `planctl report` takes for 50 plans holding 5,000 attempts (the issue's target: < 10 s).

Builds a throwaway project: 50 plans of 4 phases x 5 tasks (pytest tasks with junit counts, gradient
probes whose checks record six named values and a loss, check-only tasks; dependencies inside and
between phases; done, skipped and open tasks), 100 attempts per plan (runs and verifies, one in ten
failing), each with an evidence bundle holding summary.md, output.log and inputs.json, written
through planctl's own record writer, as `planctl run` leaves them. One source file is then edited,
so that some done tasks are stale.

Then it times the real console entry point (interpreter start included):

- cold: into an empty folder, every plot drawn and every evidence file copied;
- warm: again into the same folder (unchanged plots and copies kept);
- fresh clone: cold, and planctl's parse cache ($PLANCTL_CACHE_DIR, here a folder of the benchmark)
  emptied first, as on a new machine, so every plan and records file is parsed from YAML.

Each line gives the wall-clock time and the CPU time of planctl and the processes it started (plots
are drawn by several processes): on a shared machine the wall-clock time grows with the load, and
the CPU time much less.

    python benchmarks/bench_planctl_report.py [--plans 50] [--attempts 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from planctl.freshness import MANIFEST_NAME, task_manifest
from planctl.project import Project
from planctl.records import Attempt, Check, Records, records_path, save_records
from planctl.store import read_plan

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
    per_plan = attempts // plans
    log = "".join(f"tests/test_x.py::test_{i} PASSED\n" for i in range(120))
    for index in range(plans):
        (root / "tests" / f"test_plan_{index}.py").write_text("def test(): pass\n")
        path = root / "plans" / f"bench-{index:03d}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(plan_text(index))
        plan_file = read_plan(project, path)
        runnable = [(phase, task) for phase, task in plan_file.plan.tasks() if phase.id in "ABC"]
        records = Records(initiative=plan_file.plan.initiative.id)
        for number in range(1, per_plan + 1):
            phase, task = runnable[number % len(runnable)]
            failed = number % 10 == 0
            verify = task.state.value == "[D]" and number % 5 == 0
            bundle = (
                root / plan_file.plan.bundle_root / f"phase_{phase.id.lower()}" / f"2026010{number % 9}T{number:06d}Z"
            )
            bundle.mkdir(parents=True)
            manifest = task_manifest(project, plan_file, task) if task.run else None
            (bundle / "summary.md").write_text(f"# {plan_file.plan.initiative.id} {task.id} attempt #{number}\n\n" * 8)
            (bundle / "output.log").write_text(log)
            if manifest is not None:
                (bundle / MANIFEST_NAME).write_text(json.dumps(manifest.as_json()))
            records.attempts.append(
                Attempt(
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
            )
        save_records(records_path(project, plan_file.name), records)
    # An edit after the attempts: tasks whose inputs include pkg/ are stale now.
    (root / "pkg" / "physics.py").write_text((root / "pkg" / "physics.py").read_text() + "y = 2\n")


def timed(root: Path, out: Path) -> tuple[float, float, str]:
    """Wall-clock seconds, CPU seconds (planctl and the processes it started) and what it printed."""
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
    return wall, cpu, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=5000)
    parser.add_argument("--keep", type=Path, help="build the project in this (new) folder and keep it, for profiling")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        root = Path(folder) / "project"
        cache = Path(folder) / "parse-cache"  # planctl's parse cache, for this benchmark alone
        os.environ["PLANCTL_CACHE_DIR"] = str(cache)
        start = time.perf_counter()
        build(root, args.plans, args.attempts)
        print(f"built {args.plans} plans, {args.attempts} attempts in {time.perf_counter() - start:.1f} s", flush=True)
        for label, out in (("cold", "site"), ("warm", "site"), ("fresh clone", "site-2")):
            if label == "fresh clone":
                shutil.rmtree(cache)
            wall, cpu, said = timed(root, Path(folder) / out)
            print(f"{label + ':':13} {wall:6.2f} s wall, {cpu:6.2f} s CPU   {said}", flush=True)
        files = sum(len(f) for _, _, f in os.walk(Path(folder) / "site"))
        print(f"site: {files} files; target: cold < 10 s; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
