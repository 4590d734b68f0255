"""The ``nanobrag`` command.

Two modes share one entry point:

- legacy mode, ``nanobrag -cell ... -hkl ...``: nanoBragg's own flags, so existing scripts keep
  working; simulate, then write nanoBragg's output files and print a short summary like it does;
- subcommand mode, ``nanobrag COMMAND ...`` when the first argument names a command of :data:`app`
  (a typer app that other parts of nanobrag extend).

Bad input of any kind ends with one line ``nanobrag: error: <message>`` on stderr and exit status 2,
and no output file is created or replaced: every file is staged beside its target and moved into
place only once the simulation and all conversions have succeeded.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import typer
from pydantic import ValidationError

from . import __version__
from .config import OutputConfig, SimulationConfig
from .errors import InputError
from .flags import RunOptions, flag_help, parse_flags
from .io.files import StagedOutputs
from .io.images import Roi, float_image_bytes, pgm_bytes, png_bytes, resolve_pgm_scale
from .io.smv import SMVHeader, image_stats, int_image, smv_bytes
from .rng import noise_image
from .setup import Setup, build_setup
from .simulate import render

EXIT_INPUT_ERROR = 2

app = typer.Typer(add_completion=False, help="nanobrag's own commands; without one, nanobrag takes nanoBragg's flags.")


@app.callback()
def _commands() -> None:
    """nanobrag's own commands; without one, nanobrag takes nanoBragg's flags (nanobrag -h)."""


@app.command()
def version() -> None:
    """Print nanobrag's version."""
    typer.echo(f"nanobrag {__version__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nanobrag`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in _subcommand_names():
            return _run_subcommand(args)
        if args and args[0] in ("-h", "-help", "--help"):
            print(flag_help())
            return 0
        run_legacy(args)
        return 0
    except InputError as err:
        return _input_error(str(err))
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        return _input_error(f"{where}: {problem['msg'].removeprefix('Value error, ')}")


def _input_error(message: str) -> int:
    print(f"nanobrag: error: {message}", file=sys.stderr)
    return EXIT_INPUT_ERROR


def _subcommand_names() -> set[str]:
    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _run_subcommand(args: list[str]) -> int:
    try:
        app(args=args, prog_name="nanobrag")
    except SystemExit as done:  # typer's standalone mode always exits
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def run_legacy(args: Sequence[str]) -> None:
    """nanoBragg's command line: parse, simulate, write every output or none."""
    simulation, outputs, options = parse_flags(args)
    image, header, roi = render_float_image(simulation, options)
    files, report = _encode_outputs(image, header, roi, outputs)
    with StagedOutputs() as staged:
        for path, data in files:
            staged.stage(path, data)
    if not options.quiet:
        print("\n".join(report))
        print("wrote " + ", ".join(str(path) for path, _ in files))


def render_float_image(simulation: SimulationConfig, options: RunOptions) -> tuple[np.ndarray, SMVHeader, Roi]:
    """Simulate: nanoBragg's float image (float32, as C stores it), SMV header values and ROI."""
    if options.device == "cuda" and not torch.cuda.is_available():
        raise InputError("-device cuda: no CUDA device is available")

    dtype = {"float32": torch.float32, "float64": torch.float64}[options.dtype]
    setup = build_setup(simulation, dtype=dtype, device=options.device)
    image = render(setup, compile=options.compile).detach().to(device="cpu", dtype=torch.float32).numpy()
    return image, smv_header(setup), setup.roi


def smv_header(setup: Setup) -> SMVHeader:
    """The SMV header values of a resolved setup, in nanoBragg's variables and units."""
    geometry, grid = setup.geometry, setup.geometry.grid

    def scalar(value: torch.Tensor) -> float:
        return float(value.detach())

    return SMVHeader(
        fpixels=grid.fpixels,
        spixels=grid.spixels,
        pixel_size=grid.pixel_size,
        distance=scalar(geometry.distance),
        lambda0=scalar(setup.wavelength),
        Xbeam=scalar(geometry.Xbeam),
        Ybeam=scalar(geometry.Ybeam),
        Fbeam=scalar(geometry.Fbeam),
        Sbeam=scalar(geometry.Sbeam),
        detsize_s=grid.detsize_s,
        dials_origin=tuple(float(v) for v in geometry.dials_origin_mm.detach()),
        ORGX=scalar(geometry.ORGX),
        ORGY=scalar(geometry.ORGY),
        close_distance=scalar(geometry.close_distance),
        phi0=setup.phi.start,
        osc=setup.phi.osc,
        twotheta=scalar(geometry.twotheta),
    )


def _encode_outputs(
    image: np.ndarray, header: SMVHeader, roi: Roi, outputs: OutputConfig
) -> tuple[list[tuple[Path, bytes]], list[str]]:
    """The bytes of every requested file, and the summary nanoBragg would print."""
    stats = image_stats(image, roi)
    where = f"pixel (fast {stats.max_pixel[1]}, slow {stats.max_pixel[0]})" if stats.max_pixel else "no pixel"
    report = [
        f"max_I = {stats.max_I:g}  at {where}",
        f"mean= {stats.mean:g} rms= {stats.rms:g} rmsd= {stats.rmsd:g}",
    ]
    files: list[tuple[Path, bytes]] = []
    if outputs.floatfile is not None:
        files.append((outputs.floatfile, float_image_bytes(image)))
    int_pixels, intfile_scale = int_image(image, outputs.intfile_scale, outputs.adc_offset, roi)
    report.append(f"intfile_scale = {intfile_scale:g}")
    if outputs.intfile is not None:
        files.append((outputs.intfile, smv_bytes(int_pixels, header, "int")))
    if outputs.pgmfile is not None:
        pgm_scale = resolve_pgm_scale(outputs.pgm_scale, stats.rmsd, intfile_scale)
        report.append(f"pgm_scale = {pgm_scale:g}")
        files.append((outputs.pgmfile, pgm_bytes(image, pgm_scale, roi)))
    if outputs.noisefile is not None:
        seed = outputs.seed if outputs.seed is not None else int(time.time())  # nanoBragg: -time()
        noise_pixels, photons, overloads = noise_image(image, seed, outputs.adc_offset, roi)
        report.append(f"{photons:.0f} photons on noise image ({overloads} overloads), seed {seed}")
        files.append((outputs.noisefile, smv_bytes(noise_pixels, header, "noise")))
    if outputs.pngfile is not None:
        files.append((outputs.pngfile, png_bytes(image)))
    return files, report
