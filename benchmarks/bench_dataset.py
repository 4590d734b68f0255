"""Frames per second of ``nanobrag dataset``: one process, two processes under torchrun, and a GPU.

Each configuration makes the same rotation series into a fresh directory with the real command
(``python -m nanobrag dataset`` or ``torchrun --standalone --nproc_per_node K -m nanobrag dataset``)
and reports two rates:

- ``overall``: frames / wall time of the whole command, start-up (Python, torch, rendezvous) included;
- ``steady``: frames / the busiest rank's summed per-frame seconds from the manifest: the rate once
  every process is running, which is what a long dataset sees.

CPU configurations, each with the eager kernel and with the compiled (fused) kernel: one process
using every core it may; one process on one thread; two processes of one thread each
(OMP_NUM_THREADS=1, as torchrun sets by default); and, eager, one process rendering 8 frames per
kernel call (batch 8). The fused kernel is built (``nanobrag kernels
build``) before anything is timed, as a cached kernel is in practice. Where CUDA is available, one
process on the GPU with frames rendered one at a time (batch 1) and in groups of 8 per render call
(batch 8), and one process per GPU when there are several.

    python benchmarks/bench_dataset.py                         # 32 frames of 128x128, float32
    python benchmarks/bench_dataset.py --frames 64 --pixels 256 --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = (
    "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 5 -lambda 1.0 -distance 100"
    " -pixel {pixel} -detpixels {pixels} -oversample 2 -dtype {dtype}"
)


def flags_text(pixels: int, dtype: str, device: str, kernel: str) -> str:
    flags = FLAGS.format(pixels=pixels, pixel=51.2 / pixels, dtype=dtype) + f" -kernel {kernel}"
    return flags + (f" -device {device}" if device != "cpu" else "")


def spec_text(frames: int, pixels: int, dtype: str, device: str, kernel: str, batch: int | None) -> str:
    flags = flags_text(pixels, dtype, device, kernel)
    spec = {"flags": flags, "rotation": {"start_deg": 0, "osc_deg": 0.25, "frames": frames}}
    if batch is not None:
        spec["batch"] = batch
    return json.dumps(spec)  # JSON is YAML


def run(name: str, processes: int, threads: int | None, device: str, kernel: str, batch: int | None, args) -> dict:
    if kernel == "fused":  # built once, outside the timing
        flags = flags_text(args.pixels, args.dtype, device, kernel).split()
        build = [sys.executable, "-m", "nanobrag", "kernels", "build", "--", *flags]
        subprocess.run(build, check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="bench_dataset_") as folder:
        spec = Path(folder) / "spec.yaml"
        spec.write_text(spec_text(args.frames, args.pixels, args.dtype, device, kernel, batch))
        out = Path(folder) / "out"
        command = ["dataset", str(spec), "--out", str(out), "--quiet"]
        if processes == 1:
            command = [sys.executable, "-m", "nanobrag", *command]
        else:
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            command = [*launcher, "--nproc_per_node", str(processes), "-m", "nanobrag", *command]
        env = dict(os.environ)
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        start = time.perf_counter()
        finished = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if finished.returncode != 0:
            raise SystemExit(f"{name} failed:\n{finished.stderr}")
        entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    busiest = max(sum(e["seconds"] for e in entries if e["rank"] == rank) for rank in {e["rank"] for e in entries})
    return {
        "name": name,
        "processes": processes,
        "threads": threads,
        "device": device,
        "kernel": sorted({e["kernel"] for e in entries}),
        "batch": batch,
        "frames": len(entries),
        "wall_s": round(wall, 2),
        "overall_fps": round(len(entries) / wall, 3),
        "steady_fps": round(len(entries) / busiest, 3),
    }


def configurations(args) -> list[tuple]:
    cores = len(os.sched_getaffinity(0))
    chosen = []
    for kernel in args.kernels:
        chosen += [
            (f"{kernel}: 1 process, {cores} threads", 1, None, "cpu", kernel, None),
            (f"{kernel}: 1 process, 1 thread", 1, 1, "cpu", kernel, None),
            (f"{kernel}: 2 processes, 1 thread each", 2, 1, "cpu", kernel, None),
        ]
        if kernel == "eager":  # several frames per kernel call (renderer.render_batch)
            chosen.append((f"{kernel}: 1 process, 1 thread, batch 8", 1, 1, "cpu", kernel, 8))
    import torch

    if torch.cuda.is_available():
        for kernel in args.kernels:
            chosen += [
                (f"{kernel}: 1 GPU, batch 1", 1, None, "cuda", kernel, 1),
                (f"{kernel}: 1 GPU, batch 8", 1, None, "cuda", kernel, 8),
            ]
            gpus = torch.cuda.device_count()
            if gpus > 1:
                chosen.append((f"{kernel}: {gpus} GPUs, batch 8", gpus, None, "cuda", kernel, 8))
    else:
        print("no CUDA device: the GPU configurations are not measured", file=sys.stderr)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--pixels", type=int, default=128, help="detector side in pixels (51.2 mm square)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument(
        "--kernels", nargs="+", choices=["eager", "fused"], default=["eager", "fused"], help="kernels to measure"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = [run(*configuration, args) for configuration in configurations(args)]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.frames} frames of {args.pixels}x{args.pixels}, {args.dtype}, 2x2 sub-pixels, 2 phi steps per frame")
    print(f"{'configuration':40} {'wall s':>8} {'overall f/s':>12} {'steady f/s':>11}")
    for result in results:
        print(f"{result['name']:40} {result['wall_s']:8.2f} {result['overall_fps']:12.3f} {result['steady_fps']:11.3f}")


if __name__ == "__main__":
    main()
