"""``nanobrag kernels``: list, build and clear the compiled kernels cached for this user.

Building ahead of time moves the one-off compilation (about a minute per kernel on two cores)
out of the first real run: ``nanobrag kernels build -- <nanoBragg flags>`` compiles the kernels that
command line needs, for its ``-dtype`` and ``-device``.
"""

from __future__ import annotations

import shutil

import typer

from .errors import InputError

kernels_app = typer.Typer(add_completion=False, help="Compiled kernels cached for this user.", no_args_is_help=True)


@kernels_app.command("list")
def list_kernels() -> None:
    """List cached kernels: torch build, device, dtype, variant and size."""
    from .compiled import cache_root

    root = cache_root() / "kernels"
    packages = sorted(root.rglob("*.pt2")) if root.is_dir() else []
    for package in packages:
        typer.echo(f"{package.relative_to(root)}  {package.stat().st_size / 2**20:.1f} MiB")
    typer.echo(f"{len(packages)} kernel(s) in {root}")


@kernels_app.command("build")
def build_kernels(flags: list[str] = typer.Argument(None, help="nanoBragg flags after --")) -> None:
    """Compile the kernels a nanoBragg command line needs (for its -dtype and -device)."""
    import torch

    from .compiled import PackagedKernels, compiler_missing
    from .flags import parse_flags
    from .renderer import render_variants
    from .setup import build_setup

    simulation, _, options = parse_flags(flags or [])
    dtype = {"float32": torch.float32, "float64": torch.float64}[options.dtype]
    device = torch.device(options.device)
    missing = compiler_missing(device)
    if missing:
        raise InputError(f"cannot build kernels: {missing}")
    kernels = PackagedKernels(dtype, device)
    for variant in render_variants(build_setup(simulation, dtype=dtype, device=device)):
        state = "cached" if kernels.cached(variant) else "built"
        kernels.load(variant)
        typer.echo(f"{state}: {kernels.path(variant)}")


@kernels_app.command("clear")
def clear_kernels() -> None:
    """Delete every cached kernel."""
    from .compiled import cache_root

    root = cache_root() / "kernels"
    if root.is_dir():
        shutil.rmtree(root)
    typer.echo(f"cleared {root}")
