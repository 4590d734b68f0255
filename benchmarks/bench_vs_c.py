"""nanobrag against the nanoBragg C program, whole process, side by side in one run.

Every case runs both programs as separate processes on the same command line (plus output flags),
alternating which goes first, and reports the median wall time and the peak resident memory of
each. Imports, file reading and writing are all included: this is what a user waits for.

    NB_C_BIN=/path/to/nanoBragg python benchmarks/bench_vs_c.py            # every case
    NB_C_BIN=... python benchmarks/bench_vs_c.py --case simple4096 --repeat 5 --json out.json

Without NB_C_BIN (or with a path that does not run) only nanobrag is measured and no ratio is
printed. nanobrag's compiled kernels for each case are built first with ``nanobrag kernels build``
(the build time is recorded, once per machine, torch version and kernel variant); the timed runs
then load them from the user's cache, as every later run on that machine does.

Cases (float32 for nanobrag; C computes in double):

- simple4096: 4096x4096 pixels of 0.025 mm, one source, one orientation (the issue's 4096^2 case)
- heavy512: 512x512, 2x2 sub-pixels, 15 sources, 2 phi steps x 10 mosaic domains
- hkl2048: 2048x2048 with an HKL table (nearest reflection, -nointerpolate)
- noise4096: simple4096 plus the C-identical noise image (-seed); the noise stage is the difference
  to simple4096
- batch100: 100 small images (128x128, different cells): a shell loop over C against one
  ``nanobrag batch``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIMPLE = "-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -N 5 -distance 100 -detpixels 4096 -pixel 0.025"
HEAVY = (
    "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -distance 100 -pixel 0.1 -N 10"
    " -oversample 2 -mosaic 0.5 -mosaic_dom 10 -dispersion 0.5 -dispsteps 3 -hdivrange 0.5 -vdivrange 0.5"
    " -hdivsteps 3 -vdivsteps 3 -phisteps 2 -osc 0.1 -detpixels 512"
)
HKL = "-cell 50 60 70 90 90 90 -hkl P1.hkl -lambda 1.0 -N 5 -nointerpolate -distance 100 -detpixels 2048 -pixel 0.05"
OUTPUTS = "-floatfile image.bin -intfile image.img -nopgm"
CASES = {
    "simple4096": f"{SIMPLE} {OUTPUTS} -nonoise",
    "heavy512": f"{HEAVY} {OUTPUTS} -nonoise",
    "hkl2048": f"{HKL} {OUTPUTS} -nonoise",
    "noise4096": f"{SIMPLE} {OUTPUTS} -noisefile noise.img -seed 7",
}
BATCH_LINES = 100
NANOBRAG_FLAGS = "-dtype float32"


def write_hkl_table(path: Path, limit: int = 40, seed: int = 1) -> None:
    """A P1 table covering the hkl2048 detector, with reproducible structure factors."""
    rng = np.random.default_rng(seed)
    idx = np.arange(-limit, limit + 1)
    h, k, l = (a.ravel() for a in np.meshgrid(idx, idx, idx, indexing="ij"))
    amplitudes = rng.gamma(2.0, 50.0, size=h.size)
    lines = "\n".join(f"{a:4d} {b:4d} {c:4d} {f:10.2f}" for a, b, c, f in zip(h, k, l, amplitudes))
    path.write_text(lines + "\n")


def batch_lines() -> list[str]:
    """100 command lines, 128x128 pixels, cells from 40 to 139 A, one image file each."""
    return [
        f"-cell {40 + i} {45 + i} {50 + i} 90 90 90 -default_F 100 -lambda 1 -N 5 -distance 100"
        f" -detpixels 128 -pixel 0.4 -floatfile batch_{i:03d}.bin -intfile /dev/null -nopgm -nonoise"
        for i in range(BATCH_LINES)
    ]


def timed(argv: list[str], cwd: Path, shell: bool = False) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MiB of the process tree's largest process) of one run.

    CPU seconds (user + system, the process and the children it waited for) are what a loaded
    machine changes least: on shared cores the wall time also measures the neighbours.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv if not shell else argv[0], cwd=cwd, shell=shell,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[:2]} failed: {stderr.strip()[-500:]}")
    # ru_maxrss of wait4 is the child's own peak (KiB on Linux); for a shell loop it is the
    # largest of the shell's children, reported through RUSAGE_CHILDREN of the shell itself.
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


# The console script of this environment: what a user runs.
NANOBRAG = str(Path(sys.executable).with_name("nanobrag"))


def nanobrag_argv(args: str) -> list[str]:
    return [NANOBRAG, *args.split(), *NANOBRAG_FLAGS.split(), "-noprogress"]


def c_program() -> tuple[str | None, str]:
    """The C program from NB_C_BIN, and why not when it cannot be used."""
    path = os.environ.get("NB_C_BIN")
    if not path:
        return None, "NB_C_BIN is not set: the C program is not measured and no ratio is printed"
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        return None, f"NB_C_BIN={path} is not an executable file: the C program is not measured"
    return path, ""


def conditions(c_bin: str | None) -> dict:
    import torch

    from nanobrag.threads import available_cores

    cpu = "unknown"
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "cpu": cpu,
        "cores_available": available_cores(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "nanobrag_flags": NANOBRAG_FLAGS,
    }
    if c_bin:
        info["c_program"] = c_bin
        info["c_sha256"] = hashlib.sha256(Path(c_bin).read_bytes()).hexdigest()[:16]
        info["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS", "unset (all cores if built with OpenMP)")
    return info


def run_case(name: str, work: Path, c_bin: str | None, repeat: int) -> dict:
    folder = work / name
    folder.mkdir()
    if name == "hkl2048":
        write_hkl_table(folder / "P1.hkl")
    if name == "batch100":
        (folder / "jobs.txt").write_text("\n".join(batch_lines()) + "\n")
        (folder / "jobs_nb.txt").write_text("\n".join(f"{line} {NANOBRAG_FLAGS}" for line in batch_lines()) + "\n")
        nb = [NANOBRAG, "batch", "jobs_nb.txt", "--no-progress"]
        # The shell loop C users write: one process per image.
        c = [f'while read -r line; do "{c_bin}" $line > /dev/null || exit 1; done < jobs.txt'] if c_bin else None
        shell = True
    else:
        nb = nanobrag_argv(CASES[name])
        c = [c_bin, *CASES[name].split()] if c_bin else None
        shell = False
    flags = batch_lines()[0] if name == "batch100" else CASES[name]
    build, _, _ = timed([NANOBRAG, "kernels", "build", "--", *flags.split(), *NANOBRAG_FLAGS.split()], folder)
    cold, _, _ = timed(nb, folder)  # the first run with the kernels cached
    _remove_caches(folder)
    nb_runs, c_runs = [], []
    for rep in range(repeat):
        order = [("nb", nb), ("c", c)] if rep % 2 == 0 else [("c", c), ("nb", nb)]
        for who, argv in order:
            if argv is None:
                continue
            result = timed(argv, folder, shell=shell and who == "c")
            (nb_runs if who == "nb" else c_runs).append(result)
            _remove_caches(folder)
    row = {"case": name, "kernel_build_s": build, "nanobrag_first_s": cold}
    for who, runs in (("nanobrag", nb_runs), ("c", c_runs)):
        if runs:
            row[f"{who}_s"] = statistics.median(w for w, _, _ in runs)
            row[f"{who}_cpu_s"] = statistics.median(c for _, c, _ in runs)
            row[f"{who}_peak_mib"] = max(m for _, _, m in runs)
    if c_runs:
        row["ratio"] = row["nanobrag_s"] / row["c_s"]
    return row


def _remove_caches(folder: Path) -> None:
    """Both programs cache an HKL table as Fdump.bin; every timed run reads the table itself."""
    (folder / "Fdump.bin").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=[*CASES, "batch100"], help="default: all")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    c_bin, why_not = c_program()
    cases = args.case or [*CASES, "batch100"]
    info = conditions(c_bin)
    print("conditions: " + json.dumps(info))
    if why_not:
        print(why_not)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_vs_c_") as scratch:
        for name in cases:
            rows.append(run_case(name, Path(scratch), c_bin, args.repeat))
            print(_format(rows[-1]), flush=True)
    noise = {r["case"]: r for r in rows}
    if "noise4096" in noise and "simple4096" in noise:
        stage = {who: noise["noise4096"][f"{who}_s"] - noise["simple4096"][f"{who}_s"] for who in ("nanobrag", "c")
                 if f"{who}_s" in noise["noise4096"]}  # fmt: skip
        print("noise stage (noise4096 - simple4096): " + ", ".join(f"{k} {v:.2f} s" for k, v in stage.items()))
        info["noise_stage_s"] = stage
    info["load_average_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps({"conditions": info, "cases": rows}, indent=2) + "\n")


def _format(row: dict) -> str:
    text = (
        f"{row['case']:11} nanobrag {row['nanobrag_s']:7.2f} s (cpu {row['nanobrag_cpu_s']:6.2f} s, first"
        f" {row['nanobrag_first_s']:6.2f} s, peak {row['nanobrag_peak_mib']:6.0f} MiB)"
    )
    if "c_s" in row:
        text += (
            f"   C {row['c_s']:7.2f} s (cpu {row['c_cpu_s']:6.2f} s, peak {row['c_peak_mib']:6.0f} MiB)"
            f"   nanobrag/C {row['ratio']:5.2f}"
        )
    return text


if __name__ == "__main__":
    main()
