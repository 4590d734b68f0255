"""Rendering frames for many-image commands, and the SMV header of a rendered frame.

:func:`render_frames` is the one place where commands that make many images (``nanobrag dataset``)
turn setups into host images through :func:`nanobrag.renderer.render`. It renders the setups one
after another and moves them to the host together, so on a GPU a group of frames runs back to back
without a synchronisation per frame.

A many-image run decides once how its frames are evaluated (:func:`choose_kernel`): every frame,
on every process, then runs the same code, so a frame's bytes do not depend on which process made
it or when. ``"auto"`` weighs the whole run's work, as ``nanobrag batch`` does: a dataset large
enough to pay for building a compiled kernel gets one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from .compiled import PackagedKernels, chunk_function, repeated_work
from .io.smv import SMVHeader
from .renderer import evaluations_per_pixel, render, render_variants, roi_bounds
from .setup import Setup

log = logging.getLogger("nanobrag")


def choose_kernel(setup: Setup, requested: str, renders: int) -> str:
    """``"eager"`` or ``"fused"``: how ``renders`` renders like ``setup`` should all run, for ``requested``
    (-kernel auto, fused or eager). ``"fused"`` falls back to eager where no kernel can be compiled."""
    if requested == "eager":
        return "eager"
    row0, row1, col0, col1 = roi_bounds(setup)
    pixels = max(0, row1 - row0 + 1) * max(0, col1 - col0 + 1)
    with repeated_work(renders):
        _, fused = chunk_function(
            render_variants(setup), setup.dtype, setup.device, requested, False, pixels * evaluations_per_pixel(setup)
        )
    return "fused" if fused else "eager"


def load_kernels(setup: Setup) -> None:
    """Build (once, into the user's cache) and load the compiled kernels a render of ``setup`` uses.

    A kernel that cannot be built is left to the render, which reports it and runs that variant eagerly.
    """
    kernels = PackagedKernels(setup.dtype, setup.device)
    for variant in render_variants(setup):
        try:
            kernels.load(variant)
        except Exception as err:  # the render reports it again and runs eagerly; the frames are the same
            log.warning("nanobrag: could not compile the %s kernel (%s)", variant.key, err)


def render_frames(setups: Sequence[Setup], *, kernel: str = "auto") -> list[torch.Tensor]:
    """Photons per pixel of each setup: float32 CPU tensors (slow, fast), as nanoBragg's float image stores them."""
    if not setups:
        return []
    with torch.no_grad():
        images = [render(setup, kernel=kernel) for setup in setups]
        return list(torch.stack(images).to(device="cpu", dtype=torch.float32).unbind())


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
