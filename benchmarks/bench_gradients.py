"""Cost of a gradient: forward + backward relative to the forward pass alone.

The model is the engine issue's single-crystal command, with the six cell parameters as leaf
tensors and the image sum as the loss. For each dtype: one warm-up of each, then ``--repeat`` timed
forward passes (under no_grad, as a plain simulation runs) alternating with forward+backward
passes; the best wall-clock and CPU times of each are reported. The target is a ratio of at most 3.

    python benchmarks/bench_gradients.py                # float32 and float64, CPU
    python benchmarks/bench_gradients.py --profile      # also the top operators of one backward pass
"""

from __future__ import annotations

import argparse
import time

import torch

from nanobrag.flags import parse_flags
from nanobrag.gradients import CELL_PARAMETERS, leaf_tensors, starting_values
from nanobrag.renderer import simulate

COMMAND = "-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -distance 100 -detpixels 1024 -pixel 0.1 -N 5"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def seconds(run) -> tuple[float, float]:
    """Wall-clock and CPU (all threads of this process) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(dtype: torch.dtype, repeat: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Best (wall, CPU) seconds of forward and of forward+backward, timed alternately after a warm-up."""
    config = parse_flags(COMMAND.split())[0]
    values = starting_values(config, CELL_PARAMETERS)

    def forward() -> None:
        with torch.no_grad():
            simulate(config, params=leaf_tensors(values, dtype))

    def forward_backward() -> None:
        cell = leaf_tensors(values, dtype)
        torch.autograd.grad(simulate(config, params=cell).sum(), list(cell.values()))

    forward(), forward_backward()
    pairs = [(seconds(forward), seconds(forward_backward)) for _ in range(repeat)]
    # The least disturbed runs: these machines are shared, and interleaving spreads any slow spell.
    # CPU time is less sensitive than wall time to other processes competing for the cores.
    return tuple(min(p[0][k] for p in pairs) for k in (0, 1)), tuple(min(p[1][k] for p in pairs) for k in (0, 1))


def profile(dtype: torch.dtype) -> None:
    config = parse_flags(COMMAND.split())[0]
    cell = leaf_tensors(starting_values(config, CELL_PARAMETERS), dtype)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        torch.autograd.grad(simulate(config, params=cell).sum(), list(cell.values()))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=[*DTYPES, "both"], default="both")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's top operators")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(DTYPES) if args.dtype == "both" else [args.dtype]
    print(f"nanobrag {COMMAND}")
    print(f"gradients w.r.t. the six cell parameters, {torch.get_num_threads()} threads, best of {args.repeat}")
    print(
        f"{'dtype':8} {'forward s':>10} {'fwd+bwd s':>10} {'ratio':>6}"
        f" {'CPU fwd s':>10} {'CPU f+b s':>10} {'CPU ratio':>9}"
    )
    for name in names:
        (wall_f, cpu_f), (wall_b, cpu_b) = measure(DTYPES[name], args.repeat)
        print(
            f"{name:8} {wall_f:10.3f} {wall_b:10.3f} {wall_b / wall_f:5.2f}x"
            f" {cpu_f:10.3f} {cpu_b:10.3f} {cpu_b / cpu_f:8.2f}x"
        )
        if args.profile:
            profile(DTYPES[name])


if __name__ == "__main__":
    main()
