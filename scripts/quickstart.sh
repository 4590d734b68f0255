#!/usr/bin/env bash
# One command for a newcomer: install into .venv, render a real diffraction image, show the plans.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
mkdir -p out
# A triclinic nanocrystal (nanoBragg's own flags): float image, SMV image and a PNG picture in out/.
.venv/bin/nanobrag -cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -lambda 1.0 -N 10 \
    -distance 100 -detpixels 512 -pixel 0.2 \
    -floatfile out/triclinic.bin -intfile out/triclinic.img -pngfile out/triclinic.png -nopgm -nonoise
.venv/bin/planctl status
