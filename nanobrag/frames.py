"""Rendering frames for many-image commands, and the SMV header of a rendered frame.

:func:`render_frames` is the one place where commands that make many images (``nanobrag dataset``)
turn setups into host images. Today it renders the setups one after another and moves them to the
host together, so on a GPU a group of frames runs back to back without a synchronisation per frame;
when the renderer gains a leading batch dimension, several frames per kernel slot in here and
nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .io.smv import SMVHeader
from .setup import Setup
from .renderer import render


def render_frames(setups: Sequence[Setup], *, compile: bool = False) -> list[torch.Tensor]:
    """Photons per pixel of each setup: float32 CPU tensors (slow, fast), as nanoBragg's float image stores them."""
    if not setups:
        return []
    with torch.no_grad():
        images = [render(setup, compile=compile) for setup in setups]
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
