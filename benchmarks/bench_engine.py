"""Warm throughput of the renderer, in pixel-steps per second, beside the C program's in the same run.

A pixel-step is one evaluation of the lattice sum: pixel x sensor layer x sub-pixel x source x
orientation (phi step x mosaic domain). nanobrag is measured in-process after a warm-up (the
compiled kernels loaded, nothing left to import), as a long job or ``nanobrag batch`` sees it; the
C program is timed as a whole process on the same command line (its start-up is milliseconds), so
its rate is pixel-steps / wall time. Both are also given per CPU-second (user + system of every
thread), which a machine shared with other work changes least.

    NB_C_BIN=/path/to/nanoBragg python benchmarks/bench_engine.py
    python benchmarks/bench_engine.py --dtype float64 --kernel eager --case heavy256

Without NB_C_BIN the C column is left out and no ratio is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_vs_c import HEAVY, c_program, conditions, timed, write_hkl_table

CASES = {
    "simple1024": "-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -N 5 -distance 100 -detpixels 1024 -pixel 0.1",
    "heavy256": HEAVY.replace("-detpixels 512", "-detpixels 256"),
    "heavy1024": HEAVY.replace("-detpixels 512", "-detpixels 1024"),
    "hkl1024": "-cell 50 60 70 90 90 90 -hkl P1.hkl -lambda 1.0 -N 5 -nointerpolate -distance 100 -detpixels 1024"
    " -pixel 0.1",
}


def measure_nanobrag(args: str, dtype: str, device: str, kernel: str, repeat: int) -> dict:
    import torch

    from nanobrag.flags import parse_flags
    from nanobrag.renderer import evaluations_per_pixel, render
    from nanobrag.setup import build_setup
    from nanobrag.threads import configure_threads

    threads = configure_threads()
    setup = build_setup(parse_flags(args.split())[0], dtype=getattr(torch, dtype), device=device)
    spixels, fpixels = setup.shape_2d
    steps = spixels * fpixels * evaluations_per_pixel(setup)

    def once() -> tuple[float, float]:
        if device == "cuda":
            torch.cuda.synchronize()
        start, cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            render(setup, kernel=kernel)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - cpu

    warmup, _ = once()
    runs = [once() for _ in range(repeat)]
    return {
        "pixel_steps": steps,
        "seconds": statistics.median(wall for wall, _ in runs),
        "cpu_seconds": statistics.median(cpu for _, cpu in runs),
        "warmup_seconds": warmup,
        "threads": threads,
    }


def measure_c(c_bin: str, args: str, folder: Path, repeat: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of the C program on ``args``."""
    runs = []
    for _ in range(repeat):
        (folder / "Fdump.bin").unlink(missing_ok=True)
        outputs = ["-floatfile", "c.bin", "-intfile", "/dev/null", "-nopgm", "-nonoise"]
        wall, cpu, _ = timed([c_bin, *args.split(), *outputs], folder)
        runs.append((wall, cpu))
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=list(CASES), help="default: all but heavy1024")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kernel", choices=["auto", "fused", "eager"], default="fused")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    c_bin, why_not = c_program()
    print("conditions: " + json.dumps({**conditions(c_bin), "dtype": args.dtype, "kernel": args.kernel}))
    if why_not:
        print(why_not)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as scratch:
        folder = Path(scratch)
        write_hkl_table(folder / "P1.hkl")
        os.chdir(folder)
        for name in args.case or [case for case in CASES if case != "heavy1024"]:
            (folder / "Fdump.bin").unlink(missing_ok=True)
            row = {"case": name, **measure_nanobrag(CASES[name], args.dtype, args.device, args.kernel, args.repeat)}
            row["nanobrag_rate"] = row["pixel_steps"] / row["seconds"]
            row["nanobrag_cpu_rate"] = row["pixel_steps"] / row["cpu_seconds"]
            if c_bin:
                row["c_seconds"], row["c_cpu_seconds"] = measure_c(c_bin, CASES[name], folder, args.repeat)
                row["c_rate"] = row["pixel_steps"] / row["c_seconds"]
                row["c_cpu_rate"] = row["pixel_steps"] / row["c_cpu_seconds"]
                row["ratio"] = row["nanobrag_rate"] / row["c_rate"]
                row["cpu_ratio"] = row["nanobrag_cpu_rate"] / row["c_cpu_rate"]
            rows.append(row)
            text = (
                f"{name:11} {row['pixel_steps'] / 1e6:8.1f} M pixel-steps  nanobrag {row['seconds']:7.3f} s "
                f"= {row['nanobrag_rate'] / 1e6:7.1f} M/s, {row['nanobrag_cpu_rate'] / 1e6:6.1f} M/cpu-s"
                f" (warm-up {row['warmup_seconds']:.2f} s)"
            )
            if c_bin:
                text += (
                    f"   C {row['c_seconds']:7.3f} s = {row['c_rate'] / 1e6:6.1f} M/s, {row['c_cpu_rate'] / 1e6:6.1f}"
                    f" M/cpu-s   nanobrag/C {row['ratio']:5.1f}x (per CPU-second {row['cpu_ratio']:5.1f}x)"
                )
            print(text, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
