"""How long `planctl status` takes on a plans/ folder holding every shared markdown plan.

Imports ../shared/plans_md/*.md into a temporary project, then times the real console entry point
(interpreter start included): one cold run, then the best and median of --repeat warm runs.
The issue's target is under 1 second.

    python benchmarks/bench_planctl_status.py [--shared ../shared] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    plans = sorted((args.shared / "plans_md").glob("*.md"))
    if not plans:
        raise SystemExit(f"no markdown plans under {args.shared / 'plans_md'}")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "plans").mkdir()
        for markdown in plans:
            subprocess.run(
                [sys.executable, "-m", "planctl", "--root", root, "import", markdown], check=True, capture_output=True
            )
        timings = []
        for _ in range(args.repeat + 1):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "planctl", "--root", root, "status"], check=True, capture_output=True)
            timings.append(time.perf_counter() - start)
    warm = timings[1:]
    print(
        f"planctl status, {len(plans)} plans: cold {timings[0]:.3f} s, warm best {min(warm):.3f} s, "
        f"median {statistics.median(warm):.3f} s (target < 1 s)"
    )


if __name__ == "__main__":
    main()
