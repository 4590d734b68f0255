"""The ``nanobrag`` command.

Two modes share one entry point:

- legacy mode, ``nanobrag -cell ... -hkl ...``: nanoBragg's own flags, so existing scripts keep
  working; simulate, then write nanoBragg's output files and print a short summary like it does;
- subcommand mode, ``nanobrag COMMAND ...`` when the first argument names one of :data:`SUBCOMMANDS`
  (the typer app of :func:`build_app`).

Startup is kept lean: torch, typer and pydantic are imported only by the paths that use them, so
``nanobrag -h`` imports none of them and a small image costs little more than ``import torch``.

Bad input of any kind ends with one line ``nanobrag: error: <message>`` on stderr and exit status 2,
and no output file is created or replaced: every file is staged beside its target and moved into
place only once the simulation and all conversions have succeeded.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:  # the heavy imports (torch, typer, pydantic) wait until a command needs them
    import numpy as np
    import torch
    import typer

    from .config import OutputConfig, SimulationConfig
    from .flags import RunOptions
    from .io.cbf import CBFGeometry
    from .io.files import Data
    from .io.images import Roi
    from .io.smv import SMVHeader
    from .setup import Setup

EXIT_INPUT_ERROR = 2

# The commands of build_app(), known without importing typer (a test keeps the two in step).
SUBCOMMANDS = ("batch", "dataset", "kernels", "probe-gradients", "refine", "version")


def build_app() -> typer.Typer:
    """nanobrag's own commands as a typer app (built on demand: typer costs import time)."""
    import typer

    from . import __version__
    from .batch import batch_command
    from .commands import register as register_gradient_commands
    from .kernels_command import kernels_app

    app = typer.Typer(
        add_completion=False, help="nanobrag's own commands; without one, nanobrag takes nanoBragg's flags."
    )

    @app.callback()
    def _commands() -> None:
        """nanobrag's own commands; without one, nanobrag takes nanoBragg's flags (nanobrag -h)."""

    @app.command()
    def version() -> None:
        """Print nanobrag's version."""
        typer.echo(f"nanobrag {__version__}")

    app.command("batch")(batch_command)
    app.add_typer(kernels_app, name="kernels")
    register_gradient_commands(app)  # probe-gradients, refine, dataset
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nanobrag`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        return _run_subcommand(args)
    if args and args[0] in ("-h", "-help", "--help"):
        from .flags import flag_help

        print(flag_help())
        return 0
    return run_reporting_errors(args)


def run_reporting_errors(args: Sequence[str]) -> int:
    """One nanoBragg command line; bad input is one line on stderr and exit status 2."""
    from pydantic import ValidationError

    try:
        run_legacy(args)
        return 0
    except InputError as err:
        return _input_error(str(err))
    except ValidationError as err:
        from .config import problem_message

        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        return _input_error(f"{where}: {problem_message(problem)}")


def _input_error(message: str) -> int:
    print(f"nanobrag: error: {message}", file=sys.stderr)
    return EXIT_INPUT_ERROR


def _run_subcommand(args: list[str]) -> int:
    try:
        build_app()(args=args, prog_name="nanobrag")
    except InputError as err:
        return _input_error(str(err))
    except SystemExit as done:  # typer's standalone mode always exits
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def run_legacy(args: Sequence[str]) -> None:
    """nanoBragg's command line: parse, simulate, write every output or none."""
    from .flags import parse_flags
    from .io.files import StagedOutputs, claim_outputs
    from .io.images import require_finite
    from .threads import configure_threads

    simulation, outputs, options = parse_flags(args)
    for warning in options.warnings:
        print(f"nanobrag: warning: {warning}", file=sys.stderr)
    if not options.quiet:
        for note in options.notes:
            print(f"nanobrag: note: {note}", file=sys.stderr)
    configure_threads(options.threads)
    if outputs.noisefile is not None or outputs.cbffile is not None:
        # nanoBragg seeds from the clock (as -time()) unless -seed is given; fixed now so the
        # printout, the noise image and the CBF image agree.
        outputs = outputs.model_copy(update={"seed": outputs.seed if outputs.seed is not None else int(time.time())})
    if outputs.noisefile is not None:
        from .noise import prepare_in_background

        prepare_in_background(options.noise_engine)  # the generator loads while the image renders
    with StagedOutputs() as staged:
        claim_outputs(staged, simulation, outputs)  # every target checked before anything is written
        rendered = render_float_image(simulation, options, outputs)
        require_finite(rendered.image)
        files, report = _encode_outputs(rendered, outputs, options)
        for path, data in files:
            staged.stage(path, data)
    if not options.quiet:
        print("\n".join(report))
        print("wrote " + ", ".join(str(path) for path, _ in files))


@dataclass(frozen=True)
class Rendered:
    """A simulated image and what the output files need besides it."""

    image: np.ndarray  # (slow, fast) float32 photons, as nanoBragg stores them
    header: SMVHeader
    roi: Roi
    evaluated: np.ndarray | None = None  # pixels simulated (-mask), None: all of the ROI
    cbf: CBFGeometry | None = None


def render_float_image(
    simulation: SimulationConfig, options: RunOptions, outputs: OutputConfig | None = None
) -> Rendered:
    """Simulate, printing nanoBragg's geometry printout (unless -quiet) and any -printout traces."""
    import torch

    from .frames import smv_header
    from .printout import geometry_lines
    from .progress import ProgressDisplay
    from .renderer import render
    from .setup import build_setup

    if options.device == "cuda" and not torch.cuda.is_available():
        raise InputError("-device cuda: no CUDA device is available")

    dtype = {"float32": torch.float32, "float64": torch.float64}[options.dtype]
    setup = build_setup(simulation, dtype=dtype, device=options.device)
    if not options.quiet:
        noise = outputs is not None and outputs.noisefile is not None
        print(
            "\n".join(
                geometry_lines(
                    setup,
                    headers_read=options.headers_read,
                    matrix_file=options.matrix_file,
                    amorphous_table=options.amorphous_table,
                    noise_seed=outputs.seed if noise and outputs is not None else None,
                )
            ),
            flush=True,
        )
    show = options.progress and not options.quiet
    with torch.no_grad(), ProgressDisplay("rendering", "pixel-steps", enabled=show) as progress:
        image = render(setup, kernel=options.kernel, progress=progress)
    float_image = image.to(device="cpu", dtype=torch.float32).numpy()
    if options.printout:
        _print_traces(setup, float_image, options.printout_pixel)
    evaluated = None
    if setup.mask is not None:
        evaluated = setup.mask.cpu().numpy()
    return Rendered(float_image, smv_header(setup), setup.roi, evaluated, cbf_geometry(setup))


def _print_traces(setup: Setup, image: np.ndarray, pixel: tuple[int, int] | None) -> None:
    """nanoBragg's per-pixel trace: for -printout_pixel's pixel, or for every pixel simulated."""
    from .renderer import roi_bounds
    from .trace import trace_pixel

    row0, row1, col0, col1 = roi_bounds(setup)
    mask = setup.mask.cpu().numpy() if setup.mask is not None else None
    if pixel is not None and pixel[0] >= 0:
        wanted = [(pixel[1], pixel[0])]
    else:
        wanted = [(slow, fast) for slow in range(row0, row1 + 1) for fast in range(col0, col1 + 1)]
    for slow, fast in wanted:
        inside = row0 <= slow <= row1 and col0 <= fast <= col1
        if inside and (mask is None or mask[slow, fast]):
            print("\n".join(trace_pixel(setup, fast, slow, float(image[slow, fast])).lines()))


def cbf_geometry(setup: Setup) -> CBFGeometry:
    """The miniCBF header values of a resolved setup."""
    from .io.cbf import CBFGeometry
    from .io.smv import RTD

    geometry = setup.geometry

    def scalar(value: torch.Tensor) -> float:
        return float(value.detach())

    return CBFGeometry(
        pixel_size=geometry.grid.pixel_size,
        thickness=setup.sensor.thickness,
        exposure=setup.config.beam.exposure_s,
        wavelength=scalar(setup.wavelength),
        distance=scalar(geometry.close_distance),
        beam_fast=scalar(geometry.Fbeam),
        beam_slow=scalar(geometry.Sbeam),
        phi_start=setup.phi.start * RTD,
        phi_increment=setup.phi.osc * RTD,
        twotheta=scalar(geometry.twotheta) * RTD,
    )


def _encode_outputs(
    rendered: Rendered, outputs: OutputConfig, options: RunOptions
) -> tuple[list[tuple[Path, Data]], list[str]]:
    """The content of every requested file, and the summary nanoBragg would print."""
    import numpy as np

    from .io.cbf import cbf_bytes
    from .io.images import float_image_bytes, pgm_bytes, png_bytes, resolve_pgm_scale, roi_slices
    from .io.smv import image_stats, int_image, smv_parts
    from .noise import noise_image

    image, header, roi = rendered.image, rendered.header, rendered.roi
    stats = image_stats(image, roi, rendered.evaluated)
    where = f"pixel (fast {stats.max_pixel[1]}, slow {stats.max_pixel[0]})" if stats.max_pixel else "no pixel"
    report = [
        f"max_I = {stats.max_I:g}  at {where}",
        f"mean= {stats.mean:g} rms= {stats.rms:g} rmsd= {stats.rmsd:g}",
    ]
    files: list[tuple[Path, Data]] = []
    if outputs.floatfile is not None:
        files.append((outputs.floatfile, float_image_bytes(image)))
    int_pixels, intfile_scale = int_image(image, outputs.intfile_scale, outputs.adc_offset, roi)
    report.append(f"intfile_scale = {intfile_scale:g}")
    if outputs.intfile is not None:
        files.append((outputs.intfile, smv_parts(int_pixels, header, "int")))
    if outputs.pgmfile is not None:
        pgm_scale = resolve_pgm_scale(outputs.pgm_scale, stats.rmsd, intfile_scale)
        report.append(f"pgm_scale = {pgm_scale:g}")
        files.append((outputs.pgmfile, pgm_bytes(image, pgm_scale, roi)))
    photons = None
    if outputs.noisefile is not None:
        seed = outputs.seed if outputs.seed is not None else int(time.time())  # nanoBragg: -time()
        noise_pixels, total, overloads = noise_image(
            image, seed, outputs.adc_offset, roi, options.noise_engine, device=options.device
        )
        report.append(f"{total:.0f} photons on noise image ({overloads} overloads), seed {seed}")
        files.append((outputs.noisefile, smv_parts(noise_pixels, header, "noise")))
        if outputs.cbffile is not None:
            rows, cols = roi_slices(image.shape, roi)
            photons = np.zeros(image.shape, dtype=np.int64)
            photons[rows, cols] = noise_pixels[rows, cols].astype(np.int64) - int(outputs.adc_offset)
    if outputs.pngfile is not None:
        files.append((outputs.pngfile, png_bytes(image)))
    if outputs.cbffile is not None and rendered.cbf is not None:
        files.append((outputs.cbffile, cbf_bytes(cbf_counts(image, photons, rendered.evaluated), rendered.cbf)))
    return files, report


def cbf_counts(image: np.ndarray, photons: np.ndarray | None, evaluated: np.ndarray | None) -> np.ndarray:
    """The CBF's integers: the noise image's photons if there is one, else the photons rounded; masked: -1."""
    import numpy as np

    from .io.cbf import MASKED

    counts = photons if photons is not None else np.floor(image.astype(np.float64) + 0.5).astype(np.int64)
    counts = np.clip(counts, 0, np.iinfo(np.int32).max).astype(np.int32)
    if evaluated is not None:
        counts[~evaluated] = MASKED
    return counts
