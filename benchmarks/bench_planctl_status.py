"""How long planctl's read-only commands take on real and on very large plans.

1. `planctl status` on a plans/ folder holding every shared markdown plan (../shared/plans_md),
   imported into a temporary project.
2. `planctl status`, `validate` and `next` on a generated 5,000-task plan (50 phases of 100 tasks,
   each phase requiring the one before, each task depending on the one before, half of them done),
   and `status` on a 10,000-task dependency chain.

Each command is the real console entry point in a fresh interpreter (start-up included): one cold
run with an empty parse cache (planctl.parsecache), then the best and median of --repeat warm
runs, as wall-clock time and as the CPU time of the process (user + system), which is what the
command costs on an idle core when the machine is shared. The issue's target is under 1 s for
status, validate and next on the 5,000-task plan.

    python benchmarks/bench_planctl_status.py [--shared ../shared] [--repeat 5] [--skip-shared]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

Timing = tuple[float, float]  # wall-clock seconds, CPU seconds


def timed(root: Path, cache: Path, args: list[str], repeat: int) -> tuple[Timing, list[Timing]]:
    env = {**os.environ, "PLANCTL_CACHE_DIR": str(cache)}
    timings = []
    for _ in range(repeat + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "planctl", "--root", str(root), *args], capture_output=True, env=env
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        timings.append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
        if done.returncode != 0:
            raise SystemExit(f"planctl {' '.join(args)} failed: {done.stdout.decode()}{done.stderr.decode()}")
    return timings[0], timings[1:]


def report(label: str, cold: Timing | None, warm: list[Timing]) -> None:
    walls, cpus = [w for w, _ in warm], [c for _, c in warm]
    first = f"cold {cold[0]:6.2f} s (cpu {cold[1]:5.2f})" if cold else " " * 24
    print(
        f"{label:<30} {first}   warm median {statistics.median(walls):.2f} s (best {min(walls):.2f}), "
        f"cpu median {statistics.median(cpus):.2f} s (best {min(cpus):.2f})"
    )


def large_plan(tasks: int, phases: int) -> str:
    per = tasks // phases
    lines = ["initiative: {id: BIG-001, title: a large plan}", "phases:"]
    for p in range(phases):
        lines += [f"  - id: P{p}", f"    title: phase {p}"]
        lines += [f"    requires: [P{p - 1}]"] if p else []
        lines.append("    tasks:")
        for k in range(p * per, (p + 1) * per):
            state = "'[D]'" if k < tasks // 2 else "'[ ]'"
            depends = f", depends_on: [T{k - 1}]" if k else ""
            lines.append(f"      - {{id: T{k}, description: task {k}, state: {state}{depends}}}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-shared", action="store_true", help="only the generated large plans")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        plans = sorted((args.shared / "plans_md").glob("*.md"))
        if plans and not args.skip_shared:
            root = base / "shared"
            (root / "plans").mkdir(parents=True)
            for markdown in plans:
                subprocess.run(
                    [sys.executable, "-m", "planctl", "--root", root, "import", markdown],
                    check=True,
                    capture_output=True,
                )
            report(f"status, {len(plans)} shared plans", *timed(root, base / "cache-shared", ["status"], args.repeat))
        for label, tasks, phases, commands in (
            ("5,000 tasks", 5000, 50, (["status"], ["validate"], ["next"])),
            ("10,000-task chain", 10_000, 1, (["status"],)),
        ):
            root = base / label.replace(",", "").replace(" ", "-")
            (root / "plans").mkdir(parents=True)
            (root / "plans" / "big.yaml").write_text(large_plan(tasks, phases))
            for i, command in enumerate(commands):
                cold, warm = timed(root, base / f"cache-{root.name}", command, args.repeat)
                # Only the first command of a plan finds the cache empty.
                report(f"{command[0]}, {label}", *((cold, warm) if i == 0 else (None, [cold, *warm])))
    print(f"(cold: first read of the plan, parsed by ruamel.yaml; warm: read from the parse cache; {_load()})")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
