"""Hostile command lines (issue 11): every one ends in one line ``nanobrag: error: ...``, exit 2, no file.

Each reproduction below once gave a traceback, a memory blow-up, or an image of NaN or infinity with
exit status 0. They run the real command on a 4x4 detector, so the check is end to end: parse,
validate, simulate, write.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from nanobrag import cli
from nanobrag.config import BeamConfig, CrystalConfig, DetectorConfig, OutputConfig
from nanobrag.io import files as files_module
from nanobrag.io import hkl as hkl_module

TINY = ["-default_F", "100", "-detpixels", "4", "-pixel", "0.1", "-oversample", "1", "-nopgm", "-nonoise", "-quiet"]
CELL = ["-cell", "100", "100", "100", "90", "90", "90"]


def _run(args, capsys) -> tuple[int, str]:
    status = cli.main(args)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    if status:
        assert len(lines) == 1 and lines[0].startswith("nanobrag: error: "), captured.err
        return status, lines[0].removeprefix("nanobrag: error: ")
    return status, captured.err


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


INPUT_FILES = {
    "zero.mat": "0 0 0\n0 0 0\n0 0 0\n",
    "nan.mat": "nan 0 0\n0 .01 0\n0 0 .01\n",
    "inf.mat": "inf 0 0\n0 .01 0\n0 0 .01\n",
    "huge.mat": "1e300 0 0\n0 .01 0\n0 0 .01\n",
    "flat.mat": ".01 .01 0\n.01 .01 0\n0 0 .01\n",  # a* = b*: rank 2
    "bigindex.hkl": "99999999999999999999 0 0 10\n",
    "box.hkl": "-2000 -2000 -2000 1\n2000 2000 2000 1\n",
    "nan.hkl": "0 0 0 nan\n1 1 1 nan\n",
    "inf.hkl": "0 0 0 inf\n1 0 0 -inf\n",
    "lambda0.txt": "0 0 -10 1 0\n",
    "negative_lambda.txt": "0 0 -10 1 1e-10\n0 0 -10 1 -1e-10\n",
    "at_crystal.txt": "0 0 0 1\n",
}


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, text in INPUT_FILES.items():
        (tmp_path / name).write_text(text)
    # A known memory figure, so the refusal of the 477 GiB table is the same on every machine.
    monkeypatch.setattr(hkl_module, "available_memory", lambda: 24 * 2**30)
    return tmp_path


@pytest.mark.parametrize(
    "args, message",
    [
        # -mat: zero, NaN, inf, 1e300 and rank-deficient matrices
        (["-mat", "zero.mat"], "-mat: the orientation matrix is singular"),
        (["-mat", "nan.mat"], "-mat: nan.mat: expected nine finite numbers, found 'nan' after 0"),
        (["-mat", "inf.mat"], "-mat: inf.mat: expected nine finite numbers, found 'inf' after 0"),
        (["-mat", "huge.mat"], "-mat: at 1 A the matrix gives cell edges 1e-300 100 100 A: a cell edge must lie"),
        (["-mat", "flat.mat"], "-mat: the orientation matrix is singular"),
        # cell angles that close no cell (0 defaults to 90, so 0 0 180 is 90 90 180)
        (["-cell", "100", "100", "100", "0", "0", "180"], "-cell: angles 90 90 180 make no cell"),
        (["-cell", "100", "100", "100", "120", "120", "120"], "-cell: angles 120 120 120 make no cell"),
        (["-cell", "100", "100", "100", "60", "60", "150"], "-cell: angles 60 60 150 make no cell"),
        (["-cell", "100", "100", "1e12"], "-cell: cell edges 100 100 1e+12 A: a cell edge must lie between"),
        (["-cell", "inf"], "-cell: Input should be a finite number"),
        # HKL tables
        ([*CELL, "-hkl", "bigindex.hkl"], "bigindex.hkl, line 1: Miller index out of range"),
        (
            [*CELL, "-hkl", "box.hkl"],
            "box.hkl: the reflections span h -2000..2000, k -2000..2000, l -2000..2000 (the h range is set by"
            " lines 1 and 2): nanoBragg's dense table of 4001 x 4001 x 4001 structure factors needs 477 GiB,"
            " more than 50% of the 24 GiB of memory available",
        ),
        ([*CELL, "-hkl", "nan.hkl"], "nan.hkl, line 1: structure factor must be a finite number, got 'nan'"),
        ([*CELL, "-hkl", "inf.hkl"], "inf.hkl, line 1: structure factor must be a finite number, got 'inf'"),
        # sources and wavelengths
        ([*CELL, "-lambda", "0"], "-lambda: must be positive, got 0"),
        ([*CELL, "-sourcefile", "lambda0.txt"], "lambda0.txt, line 1: the wavelength must be positive, got '0'"),
        ([*CELL, "-sourcefile", "negative_lambda.txt"], "negative_lambda.txt, line 2: the wavelength must be positive"),
        ([*CELL, "-sourcefile", "at_crystal.txt"], "at_crystal.txt: source 1 lies at the crystal"),
        ([*CELL, "-dispersion", "250"], "-dispersion: spectral dispersion must be at least 0 and less than 200 %"),
        # nonsense that nanoBragg accepts silently
        ([*CELL, "-N", "-3"], "-N: must not be negative, got -3 -3 -3 (0 means a single unit cell"),
        ([*CELL, "-Nb", "-1"], "-Nb: must not be negative"),
        ([*CELL, "-oversample", "-2"], "-oversample: must not be negative, got -2 (0 chooses automatically)"),
        ([*CELL, "-distance", "-100"], "-distance: must be positive, got -100"),
        ([*CELL, "-close_distance", "-5"], "-close_distance: must be positive, got -5"),
        ([*CELL, "-polar", "2"], "-polar: the Kahn polarization factor lies between -1 and 1"),
        ([*CELL, "-flux", "1e12", "-beamsize", "0"], "-flux: flux x exposure / beam size^2 gives no finite fluence"),
        ([*CELL, "-mosaic", "-1"], "-mosaic: must not be negative"),
        ([*CELL, "-fudge", "0"], "-fudge: must be positive"),
        ([*CELL, "-beam_vector", "0", "0", "0"], "-beam_vector: a direction cannot be the zero vector"),
        # infinities reach every setting through the number parser
        ([*CELL, "-distance", "inf"], "-distance: Input should be a finite number"),
        ([*CELL, "-fluence", "inf"], "-fluence: Input should be a finite number"),
        ([*CELL, "-default_F", "-inf"], "-default_F: Input should be a finite number"),
        ([*CELL, "-Xbeam", "inf"], "-Xbeam: Input should be a finite number"),
        # finite inputs whose product overflows: the last guard before writing
        ([*CELL, "-fluence", "1e300", "-default_F", "1e200"], "the simulated image has 16 pixels that are not finite"),
    ],
)
def test_hostile_command_lines_are_one_line_errors(inputs, capsys, args, message):
    before = _names(inputs)
    status, error = _run([*TINY, *args], capsys)  # the last occurrence of a flag wins
    assert status == 2
    assert error.startswith(message), error
    assert _names(inputs) == before  # no image, no Fdump.bin, no temporary file


def test_cache_holding_nan_is_refused(inputs, capsys):
    (inputs / "Fdump.bin").write_bytes(b"0 0 0 0 0 0\n\f" + np.array([np.nan] + [0.0] * 7, "<f8").tobytes())
    status, error = _run([*CELL, *TINY], capsys)
    assert status == 2
    assert error == (
        "Fdump.bin: HKL cache holds 1 structure factors that are not finite numbers (the first at h k l = 0 0 0);"
        " delete it, or read the list again with -hkl"
    )


def test_zero_cells_is_nanobraggs_isolated_cell_idiom(inputs, capsys):
    """nanoBragg documents -N 0 (an isolated unit cell, for SAXS and backgrounds) and computes it as one cell."""
    for n in ("0", "1"):
        assert _run([*CELL, "-N", n, *TINY, "-floatfile", f"N{n}.bin"], capsys)[0] == 0
    zero, one = (np.fromfile(inputs / f"N{n}.bin", "<f4") for n in "01")
    assert np.isfinite(zero).all() and zero.max() > 0
    np.testing.assert_array_equal(zero, one)


def test_zero_oversample_still_chooses_automatically(inputs, capsys):
    args = [*CELL, *[a for a in TINY if a not in ("-oversample", "1")]]
    assert _run([*args, "-oversample", "0", "-floatfile", "zero.bin"], capsys)[0] == 0
    assert _run([*args, "-floatfile", "auto.bin"], capsys)[0] == 0
    assert (inputs / "zero.bin").read_bytes() == (inputs / "auto.bin").read_bytes()


# ---------------------------------------------------------------------------------------------
# Outputs


def test_full_device_leaves_no_float_file(inputs, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    before = _names(inputs)
    status, error = _run([*CELL, *TINY, "-intfile", "/dev/full", "-floatfile", "f.bin"], capsys)
    assert (status, error) == (2, "-intfile: cannot write /dev/full: No space left on device")
    assert _names(inputs) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["-intfile", "same.img", "-floatfile", "same.img"],
            "-intfile: same.img is the same file as -floatfile same.img",
        ),
        (["-intfile", "./floatimage.bin"], "-intfile: floatimage.bin is the same file as -floatfile floatimage.bin"),
        (["-pngfile", "sub/../x.png", "-floatfile", "x.png"], "-pngfile: sub/../x.png is the same file as -floatfile"),
        (["-hkl", "one.hkl", "-dump", "f.bin", "-floatfile", "f.bin"], "-dump: f.bin is the same file as -floatfile"),
        (["-cbffile", "f.img", "-intfile", "f.img"], "-cbffile: f.img is the same file as -intfile f.img"),
    ],
)
def test_two_outputs_in_one_file_are_an_error(inputs, capsys, args, message):
    (inputs / "sub").mkdir()
    (inputs / "one.hkl").write_text("0 0 0 10\n")
    before = _names(inputs)
    status, error = _run([*CELL, *TINY, *args], capsys)
    assert status == 2 and error.startswith(message), error
    assert _names(inputs) == before


def test_hard_link_and_symlink_to_one_file_are_the_same_file(inputs, capsys):
    (inputs / "a.bin").write_bytes(b"old")
    os.link(inputs / "a.bin", inputs / "b.bin")
    os.symlink(inputs / "a.bin", inputs / "c.bin")
    for other in ("b.bin", "c.bin"):
        status, error = _run([*CELL, *TINY, "-floatfile", "a.bin", "-intfile", other], capsys)
        assert (status, error) == (2, f"-intfile: {other} is the same file as -floatfile a.bin")
    assert (inputs / "a.bin").read_bytes() == b"old"


def test_a_device_may_take_several_outputs(inputs, capsys):
    status, _ = _run([*CELL, *TINY, "-floatfile", "/dev/null", "-intfile", "/dev/null", "-pngfile", "p.png"], capsys)
    assert status == 0
    assert (inputs / "p.png").exists()


def test_outputs_are_checked_before_simulating(inputs, capsys, monkeypatch):
    def must_not_run(simulation, options, outputs=None):
        raise AssertionError("simulated although an output cannot be written")

    monkeypatch.setattr(cli, "render_float_image", must_not_run)
    (inputs / "a_file").write_text("")
    cases = [
        (["-noisefile", "no/dir/n.img"], "-noisefile: cannot write no/dir/n.img: No such file or directory"),
        (["-pngfile", "a_file/p.png"], "-pngfile: cannot write a_file/p.png: Not a directory"),
        (["-intfile", "."], "-intfile: cannot write .: Is a directory"),
        (["-cbffile", "no/dir/x.cbf"], "-cbffile: cannot write no/dir/x.cbf: No such file or directory"),
    ]
    for args, message in cases:
        assert _run([*CELL, *TINY, *args], capsys) == (2, message)


def test_a_pipe_output_waits_for_its_reader(inputs, capsys):
    pipe = inputs / "pipe"
    os.mkfifo(pipe)
    received, statuses = [], []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    args = [*CELL, *TINY, "-floatfile", str(pipe), "-intfile", "i.img"]
    writer = threading.Thread(target=lambda: statuses.append(cli.main(args)), daemon=True)
    writer.start()  # claims the pipe before any reader exists: that must not be an error
    reader.start()
    writer.join(timeout=120)
    reader.join(timeout=10)
    assert statuses == [0] and len(received) == 1 and len(received[0]) == 4 * 16
    assert stat.S_ISFIFO(pipe.stat().st_mode) and (inputs / "i.img").exists()


def test_values_reached_by_substring_or_from_a_header_are_checked(inputs, capsys):
    """nanoBragg also reads -misset_seed's next two arguments as misset angles, and takes -img header values
    with atof: a value that would make its image NaN is refused, and the error says how it got there."""
    from nanobrag.io.smv import SMVHeader, smv_bytes

    header = SMVHeader(4, 4, 1e-4, 0.1, 1e-10, 2e-4, 2e-4, 2e-4, 2e-4, 4e-4, (0, 0, 0), 2, 2, 0.1, 0, 0, 0)
    text = smv_bytes(np.zeros((4, 4), dtype=np.uint16), header, "int")
    (inputs / "osc.img").write_bytes(text.replace(b"OSC_RANGE=0;", b"OSC_RANGE=-1;"))
    cases = [
        (["-misset_seed", "3", "inf", "0"], "-misset_seed (read by nanoBragg as -misset too): Input should be"),
        (["-twotheta_axis", "1e400", "0", "1"], "-twotheta_axis (read by nanoBragg as -twotheta too): Input should be"),
        (["-img", "osc.img"], "-img osc.img (OSC_RANGE): must not be negative, got -1"),
    ]
    before = _names(inputs)
    for args, message in cases:
        status, error = _run([*CELL, *TINY, *args], capsys)
        assert status == 2 and error.startswith(message), error
    assert _names(inputs) == before
    # The same arguments with finite values run, as nanoBragg's documented command lines do.
    assert _run([*CELL, *TINY, "-misset_seed", "3", "-default_F", "50", "-floatfile", "m.bin"], capsys)[0] == 0


def test_config_models_refuse_what_the_flags_refuse():
    """The Python API gets the same checks as the command line."""
    bad = [
        (CrystalConfig, {"cell": (100, 100, 100, 90, 90, 180)}, "make no cell"),
        (CrystalConfig, {"N": (-1.0, 1.0, 1.0)}, "must not be negative"),
        (CrystalConfig, {"mosflm_matrix": ((0.01, 0.01, 0), (0.01, 0.01, 0), (0, 0, 0.01))}, "singular"),
        (DetectorConfig, {"distance_mm": 0.0}, "greater than 0"),
        (DetectorConfig, {"oversample": -1}, "must not be negative"),
        (DetectorConfig, {"absorption_depth_um": float("nan")}, "0 or inf"),
        (BeamConfig, {"dispersion_pct": 200.0}, "less than 200"),
        (BeamConfig, {"fluence": float("inf")}, "finite number"),
        (OutputConfig, {"intfile_scale": -1.0}, "must not be negative"),
    ]
    from pydantic import ValidationError

    for model, values, message in bad:
        with pytest.raises(ValidationError, match=message):
            model(**values)
    assert DetectorConfig(absorption_depth_um=float("inf")).absorption_depth_um == float("inf")  # "no absorption"
    assert CrystalConfig(N=(0.0, 0.0, 0.0)).N == (0.0, 0.0, 0.0)


def test_console_script_gives_no_traceback_for_a_singular_matrix(tmp_path):
    script = Path(sys.executable).with_name("nanobrag")
    if not script.exists():
        pytest.skip("the nanobrag console script is not installed in this environment")
    (tmp_path / "zero.mat").write_text(INPUT_FILES["zero.mat"])
    done = subprocess.run([str(script), "-mat", "zero.mat", *TINY], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("nanobrag: error: -mat: the orientation matrix is singular")
    assert done.stderr.count("\n") == 1 and _names(tmp_path) == ["zero.mat"]


def test_endless_inputs_are_cut_off(inputs, capsys, monkeypatch):
    """/dev/zero as an input file reads to a limit, not to the end of memory."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this system")
    status, error = _run(["-mat", "/dev/zero", *TINY], capsys)
    assert (status, error) == (2, "-mat: cannot read matrix file /dev/zero: more than 1 MiB from a device or pipe")
    monkeypatch.setattr(files_module, "STREAM_READ_LIMIT", 2**16)
    status, error = _run([*CELL, "-hkl", "/dev/zero", *TINY], capsys)
    assert (status, error) == (2, "cannot read HKL file /dev/zero: more than 64 KiB from a device or pipe")


def test_a_pipe_input_without_writer_does_not_hang(inputs, capsys):
    os.mkfifo(inputs / "in.hkl")
    status, error = _run([*CELL, "-hkl", "in.hkl", *TINY], capsys)
    assert (status, error) == (2, "in.hkl: no reflections in HKL file")


def test_a_device_is_no_structure_factor_cache(inputs, capsys):
    """-dump /dev/null keeps -hkl from leaving a cache; without -hkl it holds no structure factors."""
    (inputs / "one.hkl").write_text("0 0 0 10\n")
    args = [*TINY, "-default_F", "0", *CELL, "-dump", "/dev/null"]
    assert _run([*args, "-hkl", "one.hkl", "-floatfile", "f.bin"], capsys)[0] == 0
    assert (inputs / "f.bin").exists() and not (inputs / "Fdump.bin").exists()
    status, error = _run(args, capsys)
    assert (status, error) == (
        2,
        "no structure factors: give -hkl FILE or a non-zero -default_F (no /dev/null to read)",
    )
