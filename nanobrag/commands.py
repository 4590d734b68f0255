"""The gradient commands of ``nanobrag``: ``probe-gradients`` and ``refine``.

Each is a typer command function; :func:`register` adds them to nanobrag's typer app. Both take
nanoBragg's own flags after ``--`` and parse them with :func:`nanobrag.flags.parse_flags`. Results
go to a JSON file written all at once; progress goes to stderr. Bad input raises
:class:`nanobrag.errors.InputError`, which the ``nanobrag`` entry point reports on one line with
exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import typer
from typer.core import TyperCommand

from .config import SimulationConfig
from .errors import InputError
from .fixtures import triclinic_fixture
from .flags import parse_flags
from .gradients import CELL_PARAMETERS, LOSSES, check_parameter_names, probe_gradients, write_json
from .io.images import read_float_image
from .refine import DEFAULT_SCHEDULE, check_refinable, check_schedule, detector_shape, refine

_FLAGS_HELP = "nanoBragg flags after --, e.g. -- -cell 70 80 90 75 85 95 -default_F 100 -N 5"
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class _VariadicOptions(TyperCommand):
    """Lets ``--default-F 0 100`` mean ``--default-F 0 --default-F 100`` (one value per option use otherwise)."""

    variadic = ("--default-F", "--param")

    def parse_args(self, ctx, args: list[str]) -> list[str]:
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
    target: Path = typer.Option(..., "--target", help="target image: raw float32, the detector's size (-floatfile)"),
    refine_names: str = typer.Option(..., "--refine", help="comma-separated parameters, e.g. cell_a,cell_b,cell_c"),
    out: Path = typer.Option(Path("refine.json"), "--out", help="JSON result file"),
    max_iter: int = typer.Option(100, "--max-iter", help="L-BFGS iterations per stage, at most"),
    schedule: str = typer.Option(",".join(DEFAULT_SCHEDULE), "--schedule", help="comma-separated stages: gauss, model"),
) -> None:
    """Fit parameters and an overall scale to a target image, starting from the model the flags describe."""
    names = check_refinable(_split(refine_names), "--refine")
    stages = check_schedule(_split(schedule), "--schedule")
    if max_iter < 1:
        raise InputError(f"--max-iter: must be at least 1, got {max_iter}")
    config, dtype, device = _simulation_from_flags(flags)
    image = _read_target(target, detector_shape(config))
    result = refine(
        config, image, names, max_iter=max_iter, schedule=stages, dtype=dtype, device=device, progress=_stderr
    )
    document = result.as_json()
    document.update(
        target=str(target), flags=flags, dtype=str(dtype).removeprefix("torch."), config=config.model_dump(mode="json")
    )
    write_json(out, document)
    _stderr(f"wrote {out}")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(app: typer.Typer) -> None:
    """Add ``probe-gradients`` and ``refine`` to ``app``."""
    app.command("probe-gradients", cls=_VariadicOptions)(probe_gradients_command)
    app.command("refine")(refine_command)
