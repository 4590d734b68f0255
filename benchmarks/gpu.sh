#!/usr/bin/env bash
# GPU checks in one go, for a lent GPU machine (see /work/.library/device): CUDA parity on golden
# cases, then the heavy case's throughput at 1024x1024 in float32 and float64, cold and warm.
#
#   bash benchmarks/gpu.sh [SHARED_DIR]        # SHARED_DIR: the folder holding golden/ (default ../shared)
#
# It uses the machine's own python3 and CUDA build of torch, with this checkout on PYTHONPATH (no
# install). Packages that machine lacks (pydantic, ruamel.yaml, ...) must come as wheels: see the
# message below when one is missing. Results go to $OUT (or ./gpu-results) as JSON and logs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-gpu-results}"
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export NANOBRAG_CACHE_DIR="${NANOBRAG_CACHE_DIR:-$PWD/.nanobrag-cache}"
python3 - <<'PY' || exit 2
import importlib, sys
missing = [m for m in ("torch", "numpy", "pydantic", "typer", "rich", "ruamel.yaml", "numba", "pytest")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit("missing packages: " + " ".join(missing) + " -- carry them as wheels (device README: .whl)")
import torch
if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device")
print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))
PY
SHARED="${1:-../shared}"
status=0
# 1. Parity: golden cases rendered on the GPU against the C program's images (both dtypes).
NANOBRAG_SHARED="$SHARED" NANOBRAG_TEST_DEVICE=cuda python3 -m pytest -q -p no:cacheprovider \
    tests/nanobrag/test_golden_parity.py -k "test_image_matches_c and (simple_cubic or hkl_nearest or hkl_tricubic or mosaic or divergence or absorption or polar_kahn)" \
    2>&1 | tee "$OUT_DIR/parity.log" || status=1
# 2. Throughput of the heavy case at 1024x1024: the first render of each process includes the kernel
#    build (cold); the median of the timed renders after it is warm.
for dtype in float32 float64; do
    python3 benchmarks/bench_engine.py --device cuda --case heavy1024 --dtype "$dtype" --kernel fused \
        --repeat 3 --json "$OUT_DIR/heavy1024-$dtype.json" 2>&1 | tee "$OUT_DIR/heavy1024-$dtype.log" || status=1
done
exit $status
