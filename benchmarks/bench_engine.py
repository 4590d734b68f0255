"""Speed and memory of the renderer on the engine issue's two reference commands.

Each command runs in its own process (so peak memory is its own): one warm-up render, then the
median of ``--repeat`` timed renders. Prints seconds, pixels per second, evaluations per second
(pixel x sub-pixel x source x phi x domain), peak resident memory, and the C program's time on this
project's 2-core machines for comparison.

    python benchmarks/bench_engine.py                 # float32, CPU, eager
    python benchmarks/bench_engine.py --compile       # torch.compile'd hot loop (first call compiles)
    python benchmarks/bench_engine.py --dtype float64 --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CASES = {
    "single": (
        "-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -distance 100 -detpixels 1024 -pixel 0.1 -N 5",
        0.2,
    ),
    "sampled": (
        "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -distance 100 -pixel 0.1 -N 10"
        " -oversample 2 -mosaic 0.5 -mosaic_dom 10 -dispersion 0.5 -dispsteps 3 -hdivrange 0.5 -vdivrange 0.5"
        " -hdivsteps 3 -vdivsteps 3 -phisteps 2 -osc 0.1 -detpixels 256",
        7.0,
    ),
}


def measure(case: str, dtype: str, device: str, repeat: int, compile_: bool) -> dict:
    import torch

    from nanobrag.flags import parse_flags
    from nanobrag.setup import build_setup
    from nanobrag.simulate import render

    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    config = parse_flags(CASES[case][0].split())[0]
    setup = build_setup(config, dtype=torch_dtype, device=device)

    def once() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            render(setup, compile=compile_)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    warmup = once()
    times = [once() for _ in range(repeat)]
    seconds = statistics.median(times)
    spixels, fpixels = setup.shape_2d
    phisteps, domains = setup.orientations.shape[:2]
    evaluations = spixels * fpixels * setup.oversample**2 * setup.sources.count * phisteps * domains
    result = {
        "case": case,
        "seconds": seconds,
        "warmup_seconds": warmup,
        "pixels_per_second": spixels * fpixels / seconds,
        "evaluations_per_second": evaluations / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }
    if device == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.case, args.dtype, args.device, args.repeat, args.compile)))
        return
    cases = list(CASES) if args.case == "all" else [args.case]
    mode = "compiled" if args.compile else "eager"
    print(f"nanobrag renderer, {args.dtype}, {args.device}, {mode}, median of {args.repeat} after warm-up")
    print(
        f"{'case':8} {'seconds':>8} {'C (s)':>6} {'vs C':>6} {'Mpixel/s':>9} {'Meval/s':>8} "
        f"{'peak MB':>8} {'warm-up s':>9}"
    )
    for case in cases:
        child = [
            sys.executable,
            __file__,
            "--child",
            "--case",
            case,
            "--dtype",
            args.dtype,
            "--device",
            args.device,
            "--repeat",
            str(args.repeat),
        ] + (["--compile"] if args.compile else [])
        r = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        c_seconds = CASES[case][1]
        print(
            f"{case:8} {r['seconds']:8.3f} {c_seconds:6.1f} {c_seconds / r['seconds']:5.1f}x "
            f"{r['pixels_per_second'] / 1e6:9.2f} {r['evaluations_per_second'] / 1e6:8.1f} "
            f"{r.get('peak_cuda_mb', r['peak_rss_mb']):8.0f} {r['warmup_seconds']:9.2f}"
        )


if __name__ == "__main__":
    main()
