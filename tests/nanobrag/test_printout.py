"""nanoBragg's printouts: the geometry lines before simulating and the -printout_pixel trace."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nanobrag import cli
from nanobrag.flags import parse_flags
from nanobrag.printout import geometry_lines
from nanobrag.renderer import render
from nanobrag.setup import build_setup
from nanobrag.trace import pixel_photons, trace_pixel

from ..conftest import find_shared_dir

INPUT_FILES = ("dense.hkl", "sparse.hkl", "A.mat", "header.img", "mask.img", "stol.txt")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _all_cases() -> list:
    shared = find_shared_dir()
    if shared is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="shared/golden not found beside the repository"))]
    names = ("cases.json", "cases_dropin.json")
    cases = [case for name in names for case in json.loads((shared / "golden" / name).read_text())]
    return [pytest.param(case, id=case["name"]) for case in cases]


def _same_line(mine: str, theirs: str) -> bool:
    """Equal text and numbers equal to the printed precision (a -0 prints where C has 0 and back)."""
    mine, theirs = mine.replace("-0.00000000", " 0.00000000"), theirs.replace("-0.00000000", " 0.00000000")
    if _NUMBER.sub("#", mine) != _NUMBER.sub("#", theirs):
        return False
    for a, b in zip(_NUMBER.findall(mine), _NUMBER.findall(theirs)):
        a, b = float(a), float(b)
        if abs(a - b) > 2e-5 * max(abs(a), abs(b)) + 1.1e-8:
            return False
    return True


def _c_printout(log: Path) -> list[str]:
    """The C program's lines before its pixel loop (without its banner and memory addresses)."""
    lines = []
    for line in log.read_text().splitlines():
        if line.startswith(("mmap(", "nanoBragg nanocrystal")) or line.endswith("% done"):
            continue
        if line == "" or line.startswith(("WARNING: out of range", "  20   30", "solid angle")):
            break
        lines.append(line)
    return lines


def _copy_inputs(shared: Path, folder: Path) -> None:
    for name in INPUT_FILES:
        shutil.copy(shared / "golden" / name, folder / name)


@pytest.mark.golden
@pytest.mark.parametrize("case", _all_cases())
def test_geometry_printout_is_nanobraggs(case, shared_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _copy_inputs(shared_dir, tmp_path)
    simulation, _, run = parse_flags(case["args"])
    setup = build_setup(simulation, dtype=torch.float64)
    mine = geometry_lines(
        setup, headers_read=run.headers_read, matrix_file=run.matrix_file, amorphous_table=run.amorphous_table
    )
    assert mine[0].startswith("nanobrag ")
    theirs = _c_printout(shared_dir / "golden" / f"{case['name']}.log")
    assert len(mine) - 1 == len(theirs), "\n".join(mine[1:])
    for line, expected in zip(mine[1:], theirs):
        assert _same_line(line, expected), f"{line!r} != {expected!r}"


def _printout_pixel_case(shared: Path) -> dict:
    cases = json.loads((shared / "golden" / "cases_dropin.json").read_text())
    return next(case for case in cases if case["name"] == "printout_pixel")


@pytest.mark.golden
def test_printout_pixel_trace_is_nanobraggs(shared_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = _printout_pixel_case(shared_dir)["args"] + ["-nopgm", "-nonoise"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    log = (shared_dir / "golden" / "printout_pixel.log").read_text().splitlines()
    start = log.index(next(line for line in log if line.startswith("  20   30 :")))
    expected = log[start : start + 14]
    at = printed.index(next(line for line in printed if line.startswith("  20   30 :")))
    for line, c_line in zip(printed[at : at + 14], expected):
        assert _same_line(line, c_line), f"{line!r} != {c_line!r}"
    # the geometry printout precedes the trace, the summary follows it
    assert (
        printed.index("mosflm convention selected.")
        < at
        < printed.index(next(p for p in printed if p.startswith("max_I")))
    )


def test_trace_agrees_with_the_renderer_everywhere_it_looks(tmp_path, monkeypatch):
    """trace.py evaluates a pixel on its own; its I and factors must give the rendered value."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.txt").write_text("-10 0 0 1 1e-10\n-10 0.1 0 2 1.1e-10\n")
    commands = [
        "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 3 -detpixels 10 -pixel 1 -oversample 2",
        "-cell 70 80 90 75 85 95 -default_F 100 -N 3 -detpixels 10 -pixel 1 -oversample 2 -oversample_omega"
        " -oversample_polar -polar 0.5 -water 30",
        "-cell 70 80 90 75 85 95 -default_F 100 -N 3 -detpixels 10 -pixel 1 -oversample 2 -detector_abs 300"
        " -detector_thick 100 -detector_thicksteps 3 -sourcefile s.txt -dmin 9 -phi 0 -osc 2 -phisteps 2",
    ]
    for command in commands:
        for corrected in (False, True):
            setup = build_setup(parse_flags(command.split() + (["-corrected"] if corrected else []))[0])
            image = render(setup)
            for fast, slow in ((0, 0), (3, 7), (9, 2), (5, 5)):
                trace = trace_pixel(setup, fast, slow, float(image[slow, fast]))
                assert pixel_photons(trace, setup) == pytest.approx(float(image[slow, fast]), rel=1e-10, abs=1e-30), (
                    command,
                    corrected,
                    fast,
                    slow,
                )


def test_quiet_silences_the_printout_but_not_a_requested_trace(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = ["-cell", "50", "-default_F", "10", "-detpixels", "6", "-pixel", "1", "-nonoise", "-nopgm"]
    assert cli.main(base) == 0
    out = capsys.readouterr().out
    assert "mosflm convention selected." in out and "real-space cell vectors (Angstrom):" in out
    assert cli.main([*base, "-quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert cli.main([*base, "-quiet", "-printout_pixel", "2", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("   2    3 : stol = ") and len(out) == 14
    assert cli.main([*base, "-quiet", "-printout", "-roi", "1", "2", "0", "0"]) == 0  # every pixel simulated
    assert [line[:9] for line in capsys.readouterr().out.splitlines() if " : stol" in line] == [
        "   1    0",
        "   2    0",
    ]


def test_printout_lists_headers_matrix_and_tables(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "A.mat").write_text("0.01 0 0\n0 0.01 0\n0 0 0.01\n")
    (tmp_path / "s.txt").write_text("0 2.5\n0.1 2.6\n")
    args = ["-mat", "A.mat", "-default_F", "10", "-detpixels", "6", "-stol", "s.txt", "-nopgm", "-seed", "4"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert "reading A.mat" in out and "reading s.txt" in out
    at = out.index("  noise image paramters:")  # nanoBragg's spelling
    assert out[at + 1 : at + 3] == ["  seed: -4", "  water droplet size: 0 m"]
    np.testing.assert_array_equal(np.fromfile("floatimage.bin", "<f4").shape, (36,))
