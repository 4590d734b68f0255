"""The nanobrag command: error handling, subcommands and the files it writes.

The simulation itself is replaced here by the golden C float image of case smv_int_noise (and the
header values its log prints), so these tests check everything the command does around it: the
files must then be byte-identical to the C program's.
"""

from __future__ import annotations

import numpy as np
import pytest

from nanobrag import __version__, cli
from nanobrag.errors import InputError
from nanobrag.io.images import read_pgm
from nanobrag.io.smv import image_stats, read_smv

from .golden_cases import (
    SMV_CASE_OUTPUT_ARGS,
    assert_smv_case_outputs_identical,
    case,
    float_image,
    smv_header_from_log,
)

CASE = "smv_int_noise"
CELL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100"]


@pytest.fixture
def golden_render(shared_dir, monkeypatch):
    """Make the command 'simulate' by returning the golden float image of smv_int_noise."""
    image = float_image(shared_dir, CASE)
    header = smv_header_from_log(shared_dir, CASE)
    calls = []

    def fake_render(simulation, options, outputs=None):
        calls.append((simulation, options))
        return cli.Rendered(image, header, (0, 255, 0, 255))

    monkeypatch.setattr(cli, "render_float_image", fake_render)
    return calls


def _files(path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


@pytest.mark.golden
def test_outputs_are_byte_identical_to_nanobraggs(shared_dir, tmp_path, monkeypatch, golden_render, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(case(shared_dir, CASE)["args"] + SMV_CASE_OUTPUT_ARGS) == 0
    assert_smv_case_outputs_identical(shared_dir, tmp_path)
    assert _files(tmp_path) == ["f.bin", "i.img", "n.img"]
    printed = capsys.readouterr().out
    assert "max_I = 520.365" in printed and "mean= 14.9973 rms= 53.7126 rmsd= 51.5764" in printed
    assert "intfile_scale = 2.5" in printed and "983096 photons on noise image (0 overloads)" in printed
    simulation, options = golden_render[0]
    assert simulation.crystal.N == (5, 5, 5) and options.dtype == "float64"


@pytest.mark.golden
def test_default_output_files_like_nanobragg(shared_dir, tmp_path, monkeypatch, golden_render, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main([*CELL, "-seed", "1", "-pngfile", "view.png"]) == 0
    assert _files(tmp_path) == ["floatimage.bin", "image.pgm", "intimage.img", "noiseimage.img", "view.png"]
    _header, pixels = read_smv(tmp_path / "intimage.img")
    assert pixels.max() == 55040  # autoscale: max_I -> 55000, plus the ADC offset
    assert read_pgm(tmp_path / "image.pgm").shape == (256, 256)
    rmsd = image_stats(float_image(shared_dir, CASE)).rmsd
    assert f"# pixels scaled by {250 / (5 * rmsd):g}\n".encode() in (tmp_path / "image.pgm").read_bytes()
    assert "wrote floatimage.bin, intimage.img, image.pgm, noiseimage.img, view.png" in capsys.readouterr().out


@pytest.mark.golden
def test_quiet_prints_nothing_and_seed_changes_noise(tmp_path, monkeypatch, golden_render, capsys):
    monkeypatch.chdir(tmp_path)
    for seed in ("1", "2"):
        assert cli.main([*CELL, "-quiet", "-nopgm", "-seed", seed, "-noisefile", f"n{seed}.img"]) == 0
    assert capsys.readouterr().out == ""
    assert not np.array_equal(read_smv(tmp_path / "n1.img")[1], read_smv(tmp_path / "n2.img")[1])


def _error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nanobrag: error: "), captured.err
    return lines[0].removeprefix("nanobrag: error: ")


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "no crystal: give -cell"),
        (["-distance", "100"], "no crystal"),
        ([*CELL, "-strict", "-bogus"], "-bogus: not a nanoBragg option; ignored, as nanoBragg does"),
        ([*CELL, "-distance"], "-distance: expected 1 value (MM), got 0"),
        ([*CELL, "-N", "many"], "-N: expected an integer, got 'many'"),
        ([*CELL, "-pixel", "-0.1"], "-pixel: must be positive, got -0.1"),
        ([*CELL, "-hkl", "missing.hkl"], "-hkl: cannot read missing.hkl: No such file or directory"),
        ([*CELL, "-mat", "missing.mat"], "-mat: cannot read matrix file missing.mat: No such file or directory"),
        ([*CELL, "-sourcefile", "missing.txt"], "-sourcefile: cannot read missing.txt: No such file or directory"),
        ([*CELL, "-mask", "m.img"], "-mask: cannot read m.img: No such file or directory"),
        ([*CELL, "-dtype", "int8"], "-dtype: expected one of float32, float64, got 'int8'"),
        ([*CELL, "-lambda", "nan"], "-lambda: expected a number, got 'nan'"),
        ([*CELL, "-distance", "0"], "-distance: must be positive, got 0"),
        ([*CELL, "-hdivsteps", "3", "-vdivsteps", "1"], "the divergence grid keeps no source"),
    ],
)
def test_input_errors_exit_2_with_one_line_and_no_files(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 2
    assert _error(capsys).startswith(message)
    assert _files(tmp_path) == []


def test_error_inside_the_simulation_leaves_no_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def failing_render(simulation, options, outputs):
        raise InputError("bad.hkl, line 3: expected 'h k l F', got '1 2'")

    monkeypatch.setattr(cli, "render_float_image", failing_render)
    (tmp_path / "intimage.img").write_bytes(b"previous run")
    assert cli.main(CELL) == 2
    assert _error(capsys) == "bad.hkl, line 3: expected 'h k l F', got '1 2'"
    assert _files(tmp_path) == ["intimage.img"] and (tmp_path / "intimage.img").read_bytes() == b"previous run"


@pytest.mark.golden
def test_unwritable_output_leaves_no_other_file(tmp_path, monkeypatch, capsys, golden_render):
    monkeypatch.chdir(tmp_path)
    assert cli.main([*CELL, "-seed", "1", "-noisefile", "no/such/dir/n.img"]) == 2
    assert _error(capsys) == "-noisefile: cannot write no/such/dir/n.img: No such file or directory"
    assert _files(tmp_path) == []  # the float, int and PGM files were staged, then removed


def test_output_that_is_a_directory_leaves_no_other_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    assert cli.main([*CELL, "-detpixels", "4", "-oversample", "1", "-nonoise", "-intfile", "out", "-quiet"]) == 2
    assert _error(capsys) == "-intfile: cannot write out: Is a directory"
    assert _files(tmp_path) == ["out"] and not list((tmp_path / "out").iterdir())


def test_cuda_request_without_cuda_is_an_input_error(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    monkeypatch.chdir(tmp_path)
    assert cli.main([*CELL, "-device", "cuda"]) == 2
    assert _error(capsys) == "-device cuda: no CUDA device is available"


def test_help_lists_the_flags(capsys):
    assert cli.main(["-h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nanobrag") and "-distance MM" in out and "-mosaic DEG" in out


def test_version_subcommand(capsys):
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"nanobrag {__version__}"


def test_subcommand_usage_error_exits_2(capsys):
    assert cli.main(["version", "--bogus"]) == 2
    assert "--bogus" in capsys.readouterr().err


def test_validation_error_inside_the_simulation_is_one_line(tmp_path, monkeypatch, capsys):
    from nanobrag.config import DetectorConfig

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "render_float_image", lambda simulation, options, outputs: DetectorConfig(pixel_mm=0))
    assert cli.main(CELL) == 2
    assert _error(capsys) == "pixel_mm: must be positive, got 0"


def test_console_script_reports_errors_without_traceback(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("nanobrag")
    if not script.exists():
        pytest.skip("the nanobrag console script is not installed in this environment")
    done = subprocess.run([str(script), *CELL, "-pixel", "none"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "nanobrag: error: -pixel: expected a number, got 'none'\n" and done.stdout == ""
    assert not list(tmp_path.iterdir())


def test_subcommand_names_are_the_apps_commands():
    import typer

    assert set(cli.SUBCOMMANDS) == set(typer.main.get_command(cli.build_app()).commands)


_IMPORTS_AFTER = """
import sys
from nanobrag.cli import main
code = main({args!r})
watched = ("torch", "typer", "sympy", "torch._dynamo", "torch._inductor", "torch.fx.experimental.symbolic_shapes")
heavy = [m for m in watched if m in sys.modules]
print(code, " ".join(heavy))
"""


def _heavy_imports(args: list[str], cwd) -> tuple[str, set[str]]:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_AFTER.format(args=args)], cwd=cwd, capture_output=True, text=True, check=True
    )
    code, *modules = done.stdout.split("\n")[-2].split(" ")
    return code, set(modules) - {""}


def test_help_imports_neither_torch_nor_typer(tmp_path):
    assert _heavy_imports(["-h"], tmp_path) == ("0", set())


def test_a_small_image_imports_no_compiler_and_no_sympy(tmp_path):
    args = [*CELL, "-N", "3", "-detpixels", "16", "-floatfile", "f.bin", "-nopgm", "-nonoise", "-quiet"]
    code, modules = _heavy_imports(args, tmp_path)
    assert code == "0" and modules == {"torch"}
