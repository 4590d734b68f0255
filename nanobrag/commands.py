"""nanobrag's own commands: ``probe-gradients``, ``refine`` and ``dataset``.

Each is a typer command function; :func:`register` adds them to nanobrag's typer app. The gradient
commands take nanoBragg's own flags after ``--`` and parse them with
:func:`nanobrag.flags.parse_flags`; ``dataset`` reads them from its spec file. Results go to files
written all at once; progress goes to stderr. Bad input raises :class:`nanobrag.errors.InputError`,
which the ``nanobrag`` entry point reports on one line with exit status 2. ``dataset`` and
multi-image ``refine`` also run as ranks of a ``torchrun`` job (:mod:`nanobrag.distributed`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from typer.core import TyperCommand

from .config import SimulationConfig
from .distributed import joined, rank_device, restart_advice
from .errors import InputError
from .fixtures import triclinic_fixture
from .flags import parse_flags
from .gradients import CELL_PARAMETERS, LOSSES, check_parameter_names, probe_gradients, write_json
from .io.images import read_float_image
from .refine import DEFAULT_SCHEDULE, ImageTarget, check_refinable, check_schedule, detector_shape, refine_images

_FLAGS_HELP = "nanoBragg flags after --, e.g. -- -cell 70 80 90 75 85 95 -default_F 100 -N 5"
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class _VariadicOptions(TyperCommand):
    """Lets ``--default-F 0 100`` mean ``--default-F 0 --default-F 100`` (one value per option use otherwise)."""

    variadic = ("--default-F", "--param")

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: the click Context typer vendors
        return super().parse_args(ctx, _expand_variadic(args, self.variadic))


def _expand_variadic(args: list[str], options: tuple[str, ...]) -> list[str]:
    """Repeat a variadic option before each further value; values run until the next option or ``--``."""
    expanded: list[str] = []
    current, values = None, 0
    for position, arg in enumerate(args):
        if arg == "--":
            return expanded + args[position:]
        if arg.startswith("-") and not _is_number(arg):
            current, values = (arg if arg in options else None), 0
        elif current is not None:
            if values:
                expanded.append(current)
            values += 1
        expanded.append(arg)
    return expanded


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _simulation_from_flags(flags: list[str]) -> tuple[SimulationConfig, torch.dtype, str]:
    """nanoBragg flags -> configuration, dtype and device (nanobrag's -dtype/-device run options).

    Output-file flags are accepted and ignored: these commands write only their JSON file.
    """
    config, _outputs, options = parse_flags(flags)
    for warning in options.warnings:
        _stderr(f"nanobrag: warning: {warning}")
    if options.kernel == "fused":
        raise InputError("-kernel fused/-compile: gradient commands run the eager path; leave it out")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise InputError("-device cuda: no CUDA device is available")
    return config, _DTYPES[options.dtype], options.device


def _read_target(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        return read_float_image(path, shape)
    except InputError as err:
        raise InputError(f"--target: {err}") from None


def _stderr(line: str) -> None:
    typer.echo(line, err=True)


def probe_gradients_command(
    flags: list[str] | None = typer.Argument(None, metavar="NANOBRAGG_FLAGS", help=_FLAGS_HELP, show_default=False),
    default_F: list[float] = typer.Option(
        [0.0, 100.0], "--default-F", help="default_F of each setting probed (--default-F 0 100)"
    ),
    param: list[str] = typer.Option(
        list(CELL_PARAMETERS), "--param", help="parameters to differentiate (--param cell_a cell_b)"
    ),
    loss: str = typer.Option("sum", "--loss", help=f"scalar loss of the image: {' or '.join(LOSSES)}"),
    out: Path = typer.Option(..., "--out", help="JSON file to write"),
) -> None:
    """Differentiate a loss of the image w.r.t. model parameters, once per default_F, and write JSON.

    Without nanoBragg flags the model is the small triclinic fixture of tests/nanobrag/test_gradients.py.
    """
    names = check_parameter_names(param, "--param")
    if loss not in LOSSES:
        raise InputError(f"--loss: unknown loss {loss!r}; choose {' or '.join(LOSSES)}")
    if flags:
        config, dtype, device = _simulation_from_flags(flags)
    else:
        config, dtype, device = triclinic_fixture(), torch.float64, "cpu"
    settings = [{"default_F": value} for value in default_F]
    _stderr(
        f"probe-gradients: {len(names)} parameter(s), {len(settings)} setting(s), loss {loss},"
        f" {str(dtype).removeprefix('torch.')}"
    )
    document = probe_gradients(config, names, settings, loss, dtype=dtype, device=device)
    document["model"] = {"flags": flags} if flags else {"fixture": "nanobrag.fixtures.triclinic_fixture"}
    for result in document["results"]:
        _stderr(f"  {result['setting']}: loss {result['loss']:.6g}")
    write_json(out, document)
    _stderr(f"wrote {out}")


def refine_command(
    flags: list[str] = typer.Argument(..., metavar="NANOBRAGG_FLAGS", help=f"the starting model: {_FLAGS_HELP}"),
    target: list[Path] = typer.Option(
        [], "--target", help="target image: raw float32, the detector's size (-floatfile); repeat for several"
    ),
    targets: Path | None = typer.Option(
        None, "--targets", help="many targets: a dataset directory or manifest.jsonl (frames with their phi, misset...)"
    ),
    refine_names: str = typer.Option(
        "", "--refine", help="comma-separated shared parameters, e.g. cell_a,cell_b,cell_c,distance"
    ),
    per_image_names: str = typer.Option(
        "", "--per-image", help="comma-separated parameters fitted per image, e.g. misset_x,misset_y,misset_z"
    ),
    out: Path = typer.Option(Path("refine.json"), "--out", help="JSON result file"),
    max_iter: int = typer.Option(100, "--max-iter", help="L-BFGS iterations per stage, at most"),
    schedule: str = typer.Option(",".join(DEFAULT_SCHEDULE), "--schedule", help="comma-separated stages: gauss, model"),
) -> None:
    """Fit parameters and a scale per image to one or many target images, starting from the model the flags describe.

    Under torchrun (torchrun --nproc_per_node K -m nanobrag refine ...) the images are shared out among the
    processes; the result is the same as with one process.
    """
    names = check_parameter_names(_split(refine_names), "--refine")
    per_image = check_parameter_names(_split(per_image_names), "--per-image")
    if not names and not per_image:
        raise InputError("--refine: name at least one parameter to refine")
    for option, given in (("--refine", names), ("--per-image", per_image)):
        if given:
            check_refinable(given, option)
    stages = check_schedule(_split(schedule), "--schedule")
    if max_iter < 1:
        raise InputError(f"--max-iter: must be at least 1, got {max_iter}")
    if bool(target) == (targets is not None):
        raise InputError("--target: give one or more --target images, or --targets (a dataset or manifest)")
    config, dtype, device_name = _simulation_from_flags(flags)
    images = _image_targets(config, target, targets)
    device = rank_device(device_name)
    with joined(device) as world:
        advice = restart_advice()
        if world.is_root and advice:
            _stderr(f"nanobrag: warning: {advice}")
        result = refine_images(
            images,
            names,
            per_image,
            max_iter=max_iter,
            schedule=stages,
            dtype=dtype,
            device=device,
            progress=_stderr,
            world=world,
        )
        if world.is_root:
            document = result.as_json()
            where: dict[str, str | list[str]]
            if targets is not None:
                where = {"targets": str(targets)}
            elif len(target) == 1:
                where = {"target": str(target[0])}
            else:
                where = {"targets": [str(t) for t in target]}
            document.update(
                where, flags=flags, dtype=str(dtype).removeprefix("torch."), config=config.model_dump(mode="json")
            )
            write_json(out, document)
            _stderr(f"wrote {out}")


def _image_targets(config: SimulationConfig, files: list[Path], listed: Path | None) -> list[ImageTarget]:
    """The images to fit: each --target with the flags' model, or each frame a manifest lists with its own values."""
    shape = detector_shape(config)
    if listed is None:
        return [ImageTarget(config, functools.partial(_read_target, path, shape), name=str(path)) for path in files]
    from .dataset import frame_model, read_targets

    images = []
    for frame in read_targets(listed):
        frame_config, values = frame_model(config, frame.values)
        images.append(ImageTarget(frame_config, functools.partial(frame.load, shape), values, frame.name))
    return images


def dataset_command(
    spec: Path = typer.Argument(..., metavar="SPEC.yaml", help="dataset spec: flags and rotation, stills or sweep"),
    out: Path = typer.Option(..., "--out", help="output directory (a rerun completes what is missing)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress display"),
) -> None:
    """Make a dataset of frames (rotation series, random stills or a parameter sweep); run it again to resume.

    Runs as one process or under torchrun (torchrun --nproc_per_node K -m nanobrag dataset SPEC.yaml --out DIR).
    """
    # Imported on use (here and in _image_targets): other commands need neither h5py nor the dataset code.
    from .dataset import Dataset, describe, load_spec, run_dataset

    dataset_spec = load_spec(spec)
    root = int(os.environ.get("RANK", "0")) == 0
    if root:
        warnings = Dataset(dataset_spec, str(spec)).options.warnings
        advice = restart_advice()
        for warning in [*warnings, *([advice] if advice else [])]:
            _stderr(f"nanobrag: warning: {warning}")
    summary = run_dataset(dataset_spec, out, source=str(spec), progress=not quiet)
    if root:
        _stderr(describe(summary, out))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(app: typer.Typer) -> None:
    """Add ``probe-gradients``, ``refine`` and ``dataset`` to ``app``."""
    app.command("probe-gradients", cls=_VariadicOptions)(probe_gradients_command)
    app.command("refine")(refine_command)
    app.command("dataset")(dataset_command)
