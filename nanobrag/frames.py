"""Rendering frames for many-image commands, and the SMV header of a rendered frame.

:func:`render_frames` is the one place where commands that make many images (``nanobrag dataset``)
turn setups into host images, through :func:`nanobrag.renderer.render` or, several frames per kernel
call, :func:`nanobrag.renderer.render_batch`. A call's frames move to the host together, so on a GPU
they run back to back without a synchronisation per frame.

:class:`ImageSetups` builds the setups of many images of one simulation with its structure-factor
table read once, not once per image (or, in refinement, once per model evaluation).

A many-image run decides once how its frames are evaluated (:func:`choose_kernel`): every frame,
on every process, then runs the same code, so a frame's bytes do not depend on which process made
it or when. ``"auto"`` weighs the whole run's work, as ``nanobrag batch`` does: a dataset large
enough to pay for building a compiled kernel gets one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

import torch

from .compiled import PackagedKernels, chunk_function, repeated_work
from .config import SimulationConfig
from .io.smv import SMVHeader
from .renderer import batch_difference, evaluations_per_pixel, render, render_batch, render_variants, roi_bounds
from .setup import Device, Setup, build_setup
from .structure import StructureFactors

log = logging.getLogger("nanobrag")


class ImageSetups:
    """``build_setup`` for many images, each structure-factor table read once per dtype and device.

    The table of ``-hkl`` (or of an ``Fdump.bin`` cache) does not change from image to image; the
    images differ in geometry, orientation or crystal shape. A setup is built without the table and
    given the one read for the first image with the same structure settings, crystal sizes and
    quirks (which decide nanoBragg's interpolation), with its own ``default_F``. Images must not rewrite
    an ``Fdump.bin`` cache (``dump_path`` is None with ``-hkl``).
    """

    def __init__(self) -> None:
        self._tables: dict[tuple[object, ...], StructureFactors] = {}

    def build(
        self,
        config: SimulationConfig,
        *,
        params: Mapping[str, torch.Tensor] | None = None,
        dtype: torch.dtype | None = None,
        device: Device = None,
    ) -> Setup:
        structure = config.structure
        reads_table = structure.hkl_path is not None or (
            structure.dump_path is not None and structure.dump_path.is_file()
        )
        if not reads_table:
            return build_setup(config, params=params, dtype=dtype, device=device)
        bare = config.model_copy(
            update={"structure": structure.model_copy(update={"hkl_path": None, "dump_path": None})}
        )
        setup = build_setup(bare, params=params, dtype=dtype, device=device)
        key = (structure.model_dump_json(), tuple(config.crystal.N), config.corrected, setup.dtype, str(setup.device))
        if key not in self._tables:
            self._tables[key] = build_setup(config, dtype=setup.dtype, device=setup.device).structure
        table = dataclasses.replace(self._tables[key], default_F=setup.structure.default_F)
        return dataclasses.replace(setup, structure=table)


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
    """Photons per pixel of each setup: float32 CPU tensors (slow, fast), as nanoBragg's float image stores them.

    With the eager kernel, consecutive setups that can share a batch are evaluated together, several
    frames per kernel call within one memory budget (:func:`nanobrag.renderer.render_batch`); a
    compiled kernel renders one frame per call. On CPU a batched frame is bit for bit its single
    render (tests/nanobrag/test_dataset.py), so a frame's bytes do not depend on the frames rendered
    with it; render_batch itself promises equality to round-off.
    """
    if not setups:
        return []
    with torch.no_grad():
        if kernel == "eager" and len(setups) > 1:
            images = [image for group in _batches(setups) for image in _render_eager(group)]
        else:
            images = [render(setup, kernel=kernel) for setup in setups]
        return list(torch.stack(images).to(device="cpu", dtype=torch.float32).unbind())


def _render_eager(group: list[Setup]) -> list[torch.Tensor]:
    return list(render_batch(group).unbind()) if len(group) > 1 else [render(group[0], kernel="eager")]


def _batches(setups: Sequence[Setup]) -> list[list[Setup]]:
    """``setups`` in order, cut wherever one cannot share a batch with the first of its group."""
    groups: list[list[Setup]] = []
    for setup in setups:
        if groups and batch_difference(groups[-1][0], setup) is None:
            groups[-1].append(setup)
        else:
            groups.append([setup])
    return groups


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
        dials_origin=(
            scalar(geometry.dials_origin_mm[0]),
            scalar(geometry.dials_origin_mm[1]),
            scalar(geometry.dials_origin_mm[2]),
        ),
        ORGX=scalar(geometry.ORGX),
        ORGY=scalar(geometry.ORGY),
        close_distance=scalar(geometry.close_distance),
        phi0=setup.phi.start,
        osc=setup.phi.osc,
        twotheta=scalar(geometry.twotheta),
    )
