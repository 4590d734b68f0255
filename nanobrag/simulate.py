"""The renderer: the one place that batches pixels x layers x sub-pixels x sources x phi x mosaic.

Pixels are processed in chunks, in nanoBragg's order (slow rows, then fast columns), so memory is
bounded by the chunk size rather than the detector size. Within a chunk every other sampling axis
is a tensor dimension; there are no Python loops over them.
"""

from __future__ import annotations

import os

import torch
from torch.utils.checkpoint import checkpoint

from .beam import R_E_SQUARED, polarization_factor
from .compat import StaleStart, first_reached_row, running_product
from .config import SimulationConfig
from .detector import capture_fraction, pixel_positions, solid_angle
from .physics import lattice_factor
from .setup import Setup, build_setup
from .structure import (
    InterpolationSwitch,
    interpolation_safe,
    lookup_nearest,
    lookup_tricubic,
    nearest_index,
)

# Evaluations (pixel x layer x sub-pixel x source x phi x domain) per chunk; each costs a few dozen
# bytes of working memory per tensor, so this keeps a chunk in the tens of megabytes.
DEFAULT_CHUNK_EVALUATIONS = int(os.environ.get("NANOBRAG_CHUNK_EVALUATIONS", 1 << 20))


def simulate(
    config: SimulationConfig,
    *,
    params: dict[str, torch.Tensor] | None = None,
    dtype: torch.dtype | None = None,
    device=None,
) -> torch.Tensor:
    """Render the image (slow, fast) in photons per pixel. See :func:`nanobrag.setup.build_setup`."""
    return render(build_setup(config, params=params, dtype=dtype, device=device))


def roi_bounds(setup: Setup) -> tuple[int, int, int, int]:
    """Inclusive (first row, last row, first column, last column) that nanoBragg renders."""
    spixels, fpixels = setup.shape_2d
    xmin, xmax, ymin, ymax = setup.roi
    return max(ymin, 0), min(ymax, spixels - 1), max(xmin, 0), min(xmax, fpixels - 1)


def render(setup: Setup, *, chunk_evaluations: int | None = None, compile: bool = False) -> torch.Tensor:
    """Photons per pixel, shape (spixels, fpixels); zero outside the region of interest.

    ``compile=True`` runs the lattice-transform hot loop through torch.compile: several times faster
    for large jobs after a one-off compilation of tens of seconds. NANOBRAGG_DISABLE_COMPILE=1
    overrides it (gradient tests rely on that guard).
    """
    use_compile = compile and not compile_disabled()
    spixels, fpixels = setup.shape_2d
    row0, row1, col0, col1 = roi_bounds(setup)
    height, width = row1 - row0 + 1, col1 - col0 + 1
    if height <= 0 or width <= 0:
        return torch.zeros(spixels, fpixels, dtype=setup.dtype, device=setup.device)
    phisteps, domains = setup.orientations.shape[:2]
    per_pixel = setup.sensor.steps * setup.oversample**2 * setup.sources.count * phisteps * domains
    chunk = max(1, (chunk_evaluations or DEFAULT_CHUNK_EVALUATIONS) // per_pixel)
    # The pixels nanoBragg evaluates, in its order: the region of interest less the masked pixels.
    pixels = torch.arange(height * width, device=setup.device)
    if setup.mask is not None:
        pixels = pixels[setup.mask[row0 : row1 + 1, col0 : col1 + 1].reshape(-1)]
    count = pixels.numel()
    switch = InterpolationSwitch(on=setup.structure.interpolate)
    stale = StaleStart(pending=setup.first_evaluation_orientations is not None)
    pieces = []
    for start in range(0, count, chunk):
        index = pixels[start : start + chunk]
        slow, fast = row0 + index // width, col0 + index % width
        pieces.append(_render_chunk(setup, slow, fast, switch, stale, count > chunk, use_compile))
    values = torch.cat(pieces) if pieces else torch.zeros(0, dtype=setup.dtype, device=setup.device)
    block = torch.zeros(height * width, dtype=values.dtype, device=values.device).index_copy(0, pixels, values)
    return torch.nn.functional.pad(block.view(height, width), (col0, fpixels - 1 - col1, row0, spixels - 1 - row1))


def _render_chunk(
    setup: Setup,
    slow: torch.Tensor,
    fast: torch.Tensor,
    switch: InterpolationSwitch,
    stale: StaleStart,
    several: bool,
    use_compile: bool,
) -> torch.Tensor:
    if not (several and torch.is_grad_enabled()):
        values, switch.on, stale.pending = _pixel_values(setup, slow, fast, switch.on, stale.pending, use_compile)
        return values
    # Recompute each chunk during backward instead of keeping every chunk's intermediates alive.
    # The recomputation runs after every chunk, so it must see the run-wide state as this chunk saw
    # it, not the run's final state.
    state = {}
    on_at_start, pending_at_start = switch.on, stale.pending

    def run(slow_: torch.Tensor, fast_: torch.Tensor) -> torch.Tensor:
        values, state["on"], state["pending"] = _pixel_values(
            setup, slow_, fast_, on_at_start, pending_at_start, use_compile
        )
        return values

    values = checkpoint(run, slow, fast, use_reentrant=False)
    switch.on, stale.pending = state["on"], state["pending"]
    return values


def _pixel_values(
    setup: Setup, slow: torch.Tensor, fast: torch.Tensor, interp_on: bool, stale_pending: bool, use_compile: bool
) -> tuple[torch.Tensor, bool, bool]:
    """Photons for a chunk of pixels; whether interpolation is still on, and the stale phi-0 start
    still pending, afterwards."""
    cfg = setup.config.detector
    geom, sensor = setup.geometry, setup.sensor
    dtype, device = setup.dtype, setup.device
    P = slow.numel()
    depths = sensor.step * torch.arange(sensor.steps, dtype=dtype, device=device)
    pos = pixel_positions(geom, slow, fast, setup.oversample, depths, cfg.curved)  # (P,T,Q,3)
    airpath = pos.norm(dim=-1)
    diffracted = pos / airpath[..., None]

    # Per-pixel factors nanoBragg evaluates once (first sub-pixel) unless asked to oversample them.
    weight: torch.Tensor | None = None  # per (P,T,Q[,S]) factors folded into each contribution
    pixel_factor = torch.ones(P, dtype=dtype, device=device)
    omega = solid_angle(geom, airpath, cfg.point_pixel)
    if setup.omega_per_subpixel:
        weight = omega
    else:
        pixel_factor = pixel_factor * omega[:, 0, 0]
    if sensor.thickness > 0.0:
        layers = torch.arange(sensor.steps, dtype=dtype, device=device)[None, :, None]
        captured = capture_fraction((diffracted * geom.odet).sum(-1), layers, sensor)
        if setup.capture_per_subpixel:
            weight = captured if weight is None else weight * captured
        else:
            # nanoBragg scales the sum over all layers by the last layer's capture fraction.
            pixel_factor = pixel_factor * captured[:, -1, 0]

    sources = setup.sources
    scattering = (diffracted[:, :, :, None, :] - sources.incident) / sources.wavelength[:, None]  # (P,T,Q,S,3)
    keep = None
    if setup.dmin > 0.0:
        stol = 0.5 * scattering.norm(dim=-1)
        keep = ~(2.0 * setup.dmin * stol > 1.0)  # nanoBragg skips sources with d < dmin

    if not setup.config.beam.nopolar:
        polar = polarization_factor(setup.kahn, sources.incident, diffracted[:, :, :, None, :], geom.polar)
        if setup.polar_per_subpixel:
            weight = polar if weight is None else weight[..., None] * polar
        else:
            pixel_factor = pixel_factor * _first_evaluated(polar, keep)

    # Miller indices for every orientation, component-first: hkl[i] is (evaluations, phi x domains).
    phisteps, domains = setup.orientations.shape[:2]
    by_component = setup.orientations.permute(2, 3, 0, 1).reshape(3, 3, phisteps * domains)
    flat_scattering = scattering.reshape(-1, 3)
    first_row = None
    if stale_pending:  # the run's first evaluation reaching the spindle loop, if it is in this chunk
        first_row = first_reached_row(keep, flat_scattering.shape[0])
        stale_pending = first_row is None
    if setup.structure.table is None and not setup.running_product and first_row is None:
        lattice_power = _compiled(_lattice_power) if use_compile else _lattice_power
        per_evaluation = setup.structure.default_F**2 * lattice_power(
            flat_scattering, by_component, setup.N, setup.lattice.reciprocal, setup.shape, setup.fudge
        )
    else:
        hkl = torch.matmul(flat_scattering, by_component)
        if first_row is not None:
            first = setup.first_evaluation_orientations.permute(2, 3, 0, 1).reshape(3, 3, phisteps * domains)
            patched = torch.matmul(flat_scattering[first_row : first_row + 1], first)
            hkl = torch.cat([hkl[:, :first_row], patched, hkl[:, first_row + 1 :]], dim=1)
        f_latt = lattice_factor(setup.shape, hkl, setup.N, setup.lattice.reciprocal, setup.fudge)
        kept = keep.reshape(-1, 1) if keep is not None else None
        f_cell = setup.structure.default_F
        if setup.structure.table is not None:
            f_cell, interp_on = _table_structure_factors(setup, hkl, f_latt, kept, interp_on)
        per_orientation = (f_cell * f_latt) ** 2  # (evaluations, phi x domains)
        if setup.running_product:
            total = _running_sum(setup, per_orientation, f_latt, kept, weight, P)
            return R_E_SQUARED * setup.fluence / setup.steps * total * pixel_factor, interp_on, stale_pending
        per_evaluation = per_orientation.sum(-1)
    per_evaluation = per_evaluation.view(scattering.shape[:-1])  # (P,T,Q,S)
    if keep is not None:
        per_evaluation = torch.where(keep, per_evaluation, 0.0)
    background = setup.background
    if setup.background_per_evaluation:
        per_evaluation, background = per_evaluation + setup.background, 0.0
    if sources.weight is not None:
        per_evaluation = per_evaluation * sources.weight
    if weight is not None:
        per_evaluation = per_evaluation * (weight if weight.dim() == per_evaluation.dim() else weight[..., None])
    total = per_evaluation.reshape(P, -1).sum(-1)
    scale = R_E_SQUARED * setup.fluence / setup.steps
    return scale * (background + total) * pixel_factor, interp_on, stale_pending


def _running_sum(
    setup: Setup,
    per_orientation: torch.Tensor,
    f_latt: torch.Tensor,
    kept: torch.Tensor | None,
    weight: torch.Tensor,
    pixels: int,
) -> torch.Tensor:
    """nanoBragg's pixel sum when -oversample_* multiplies its running total (compat.running_product)."""
    reached = f_latt != 0  # C skips zero lattice factors (unless there is water) before adding or multiplying
    if setup.config.beam.water_um != 0.0:
        reached = torch.ones_like(reached)
    if kept is not None:
        reached = reached & kept
    layers, subpixels, sources = setup.sensor.steps, setup.oversample**2, setup.sources.count
    factors = weight if weight.dim() == 4 else weight[..., None]  # (P,T,Q[,S]) -> (P,T,Q,S)
    factors = factors[..., None].expand(pixels, layers, subpixels, sources, per_orientation.shape[1])
    start = setup.background * torch.ones(pixels, dtype=per_orientation.dtype, device=per_orientation.device)
    return running_product(
        per_orientation.reshape(pixels, -1), factors.reshape(pixels, -1), reached.reshape(pixels, -1), start
    )


def _lattice_power(
    scattering: torch.Tensor,
    by_component: torch.Tensor,
    N: torch.Tensor,
    reciprocal: torch.Tensor,
    shape,
    fudge: float,
) -> torch.Tensor:
    """Sum over orientations of F_latt^2 for each scattering vector: the hot loop of a default_F run."""
    hkl = torch.matmul(scattering, by_component)
    return (lattice_factor(shape, hkl, N, reciprocal, fudge) ** 2).sum(-1)


_COMPILED: dict = {}


def compile_disabled() -> bool:
    """The guard gradient tests rely on: NANOBRAGG_DISABLE_COMPILE=1 keeps every path eager."""
    return os.environ.get("NANOBRAGG_DISABLE_COMPILE", "") not in ("", "0")


def _compiled(fn):
    """torch.compile'd version of ``fn``, built once per process (first call pays the compile time)."""
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=None)
    return _COMPILED[fn]


def _first_evaluated(values: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Per pixel, the value at the first (layer, sub-pixel, source) nanoBragg evaluates; 0 if none."""
    flat = values.reshape(values.shape[0], -1)
    if keep is None:
        return flat[:, 0]
    kept = keep.reshape(keep.shape[0], -1)
    first = kept.to(torch.uint8).argmax(dim=1, keepdim=True)
    return torch.where(kept.any(dim=1), flat.gather(1, first).squeeze(1), torch.zeros_like(flat[:, 0]))


def _table_structure_factors(
    setup: Setup, hkl: torch.Tensor, f_latt: torch.Tensor, keep: torch.Tensor | None, interp_on: bool
) -> tuple[torch.Tensor, bool]:
    """F_cell per evaluation and the interpolation state after this chunk (see structure.py)."""
    sf = setup.structure
    f_cell = lookup_nearest(sf, nearest_index(hkl))
    if not interp_on:
        return f_cell, False
    # nanoBragg checks the stencil only for evaluations it reaches: kept sources, non-zero F_latt.
    reached = f_latt != 0
    if setup.config.beam.water_um != 0.0:
        reached = torch.ones_like(reached)
    if keep is not None:
        reached = reached & keep
    safe = interpolation_safe(sf, hkl)
    unsafe = (~safe & reached).reshape(-1)
    if not sf.sticky:  # corrected: every evaluation whose stencil fits is interpolated
        unsafe = torch.zeros_like(unsafe)
    cutoff = int(unsafe.nonzero()[0, 0]) if bool(unsafe.any()) else unsafe.numel()
    before = torch.arange(unsafe.numel(), device=hkl.device).view_as(safe) < cutoff
    use_tricubic = before & safe
    if bool(use_tricubic.any()):
        f_cell = f_cell.masked_scatter(use_tricubic, lookup_tricubic(sf, hkl[:, use_tricubic]))
    return f_cell, cutoff == unsafe.numel()
