"""How long planctl's read-only commands take on a folder of real plans and on very large plans.

1. `planctl status`, `next` and `validate` on a plans/ folder of 40 imported markdown plans: the
   synthetic corpus tests/data/plans_md/*.md and ../shared/plans_md/*.md (where present), the
   first ones imported a second time under other names until there are 40. Targets: status and
   next under 0.5 s, validate under 1 s.
2. `planctl status`, `validate` and `next` on a generated 5,000-task plan (50 phases of 100 tasks,
   each phase requiring the one before, each task depending on the one before, half of them done),
   and `status` on a 10,000-task dependency chain. Target: under 1 s each.

Each command is the real console entry point in a fresh interpreter (start-up included): one cold
run with an empty parse cache (planctl.parsecache: the plans are parsed by libyaml), then the best
and median of --repeat warm runs (plans read from the cache), as wall-clock time and as the CPU
time of the process (user + system). CPU time is what the command costs on an idle core; on a
machine shared by several sessions the wall time mostly measures the others.

    python benchmarks/bench_planctl_status.py [--shared ../shared] [--repeat 5] [--plans 40] [--only folder|large]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
Timing = tuple[float, float]  # wall-clock seconds, CPU seconds


def timed(root: Path, cache: Path, args: list[str], repeat: int) -> tuple[Timing, list[Timing]]:
    """The first run and the ``repeat`` runs after it of ``planctl ARGS`` with parse cache ``cache``.
    validate may exit 1: imported plans cite files of the project they came from."""
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
        if done.returncode not in ((0, 1) if args[0] == "validate" else (0,)):
            raise SystemExit(f"planctl {' '.join(args)} failed: {done.stdout.decode()}{done.stderr.decode()}")
    return timings[0], timings[1:]


def report(label: str, cold: Timing | None, warm: list[Timing], target: float) -> None:
    walls, cpus = [w for w, _ in warm], [c for _, c in warm]
    first = f"cold {cold[0]:5.2f} s (cpu {cold[1]:4.2f})" if cold else " " * 24
    print(
        f"{label:<28} {first}   warm median {statistics.median(walls):.2f} s (best {min(walls):.2f}), "
        f"cpu median {statistics.median(cpus):.2f} s (best {min(cpus):.2f})   target < {target} s"
    )


def plan_folder(base: Path, shared: Path, count: int) -> Path:
    """A project whose plans/ holds ``count`` imported markdown plans."""
    sources = sorted((REPO / "tests" / "data" / "plans_md").glob("*.md")) + sorted((shared / "plans_md").glob("*.md"))
    root = base / "folder"
    inbox = root / "markdown"
    inbox.mkdir(parents=True)
    for k in range(count):
        source = sources[k % len(sources)]
        shutil.copyfile(source, inbox / (source.name if k < len(sources) else f"copy{k}-{source.name}"))
    (root / "plans").mkdir()
    # Imported with a parse cache of its own, so that the timed commands start cold.
    env = {**os.environ, "PLANCTL_CACHE_DIR": str(base / "cache-import")}
    subprocess.run(
        [sys.executable, "-m", "planctl", "--root", str(root), "import", str(inbox)], capture_output=True, env=env
    )
    return root


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
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plans", type=int, default=40)
    parser.add_argument("--only", choices=("folder", "large"), help="run one of the two parts")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, {_load()}")
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        if args.only != "large":
            root = plan_folder(base, args.shared, args.plans)
            label = f"{len(list((root / 'plans').glob('*.yaml')))} plans"
            for i, (command, target) in enumerate((("status", 0.5), ("next", 0.5), ("validate", 1.0))):
                cold, warm = timed(root, base / "cache-folder", [command], args.repeat)
                # Only the first command finds the cache empty.
                report(f"{command}, {label}", *((cold, warm) if i == 0 else (None, [cold, *warm])), target)
        if args.only != "folder":
            for label, tasks, phases, commands in (
                ("5,000 tasks", 5000, 50, ("status", "validate", "next")),
                ("10,000-task chain", 10_000, 1, ("status",)),
            ):
                root = base / label.replace(",", "").replace(" ", "-")
                (root / "plans").mkdir(parents=True)
                (root / "plans" / "big.yaml").write_text(large_plan(tasks, phases))
                for i, command in enumerate(commands):
                    cold, warm = timed(root, base / f"cache-{root.name}", [command], args.repeat)
                    report(f"{command}, {label}", *((cold, warm) if i == 0 else (None, [cold, *warm])), 1.0)
    print(f"(cold: plans parsed by libyaml, empty parse cache; warm: plans read from the parse cache; {_load()})")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
