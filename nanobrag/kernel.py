"""One evaluation chunk: every pixel's photons from geometry, beam, lattice and structure factors.

:func:`evaluate_chunk` is the whole per-chunk physics as one pure function of tensors. Run eagerly it
is the reference renderer; compiled (torch.compile, or an AOTInductor package, see
:mod:`nanobrag.compiled`) it becomes a handful of fused loops. Its inputs are all tensors
(:class:`KernelInputs`), so a compiled kernel takes a new geometry, cell or wavelength without
recompiling; the discrete choices that change the shape of the computation form the
:class:`KernelVariant`, which is baked into each compiled kernel.

Axes: P pixels of the chunk, T sensor layers, Q = oversample^2 sub-pixels, S sources, M crystal
orientations (phi steps x mosaic domains), E = T*Q*S*P scattering vectors. Intermediates are
component-first with the pixel axis last, (3, T, Q, S, P), and Miller indices orientation-major,
(3, M, E), so that every loop streams along the longest contiguous axis. nanoBragg's own loop
order (pixel, layer, sub-pixel, source, orientation) matters where C keeps state across
evaluations; :func:`_loop_order` gives it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .beam import kahn_factor
from .config import CrystalShape
from .detector import DetectorFrame, capture_fraction, pixel_positions, solid_angle
from .physics import lattice_factor
from .structure import StructureTable, interpolation_safe, lookup_nearest, lookup_tricubic, nearest_index


class KernelVariant(NamedTuple):
    """The discrete choices of a run; each combination is compiled separately.

    ``structure`` is ``"default"`` (no table: every reflection has default_F), ``"nearest"`` or
    ``"tricubic"`` (interpolation still switched on for this chunk). The ``*_per_subpixel`` flags
    choose between nanoBragg's per-pixel factors taken from the first sub-pixel (False) and
    factors evaluated per sub-pixel (True); the others are the Setup fields of the same name
    (nanobrag.compat's quirks resolved by setup). ``stale_start``: this chunk holds the run's first
    evaluation to reach the spindle loop, which sees the unrotated crystal (the stale phi-0 quirk).
    """

    shape: CrystalShape
    structure: str
    curved: bool
    curved_lab_axes: bool
    point_pixel: bool
    absorbing_sensor: bool
    omega_per_subpixel: bool
    capture_per_subpixel: bool
    polarized: bool
    polar_per_subpixel: bool
    dmin: bool
    water: bool
    running_product: bool
    background_per_evaluation: bool
    source_weights: bool
    sticky: bool
    stale_start: bool

    @property
    def key(self) -> str:
        """A short stable name (used for compiled-kernel caches)."""
        flags = "".join("1" if value else "0" for value in self[2:])
        return f"{self.shape.value.lower()}-{self.structure}-{flags}"


class KernelInputs(NamedTuple):
    """Every tensor :func:`evaluate_chunk` reads, on one dtype and device."""

    frame: DetectorFrame
    sub_index: torch.Tensor  # (O,) int32: arange(oversample)
    layer_depths: torch.Tensor  # (T,) metres along the detector normal
    attenuation_per_layer: torch.Tensor  # () mu * layer thickness
    incident: torch.Tensor  # (S, 3) unit vectors along each source's beam
    wavelength: torch.Tensor  # (S,) metres
    source_weight: torch.Tensor  # (S,) relative weights (read when the variant has source_weights)
    e_in: torch.Tensor  # (S, 3) polarization E-vector direction per source
    b_in: torch.Tensor  # (S, 3) its normal
    kahn: torch.Tensor  # () polarization factor
    dmin: torch.Tensor  # () metres; only read when the variant has dmin
    orientations: torch.Tensor  # (3M, 3): rows a of every orientation, then every b, then every c (metres)
    first_orientations: torch.Tensor  # (3M, 3): the same for the stale first spindle sweep
    N: torch.Tensor  # (3,) cells along a, b, c
    reciprocal: torch.Tensor  # (3, 3) unrotated reciprocal vectors (rows, 1/A)
    fudge: torch.Tensor  # () spot-shape scale
    table: StructureTable  # a 1x1x1 placeholder when the variant has no table
    scale: torch.Tensor  # () r_e^2 * fluence / steps
    background: torch.Tensor  # () water term, per pixel (or per evaluation: background_per_evaluation)


class ChunkResult(NamedTuple):
    """Photons (P,) and the run-wide state after the chunk (0-d bool tensors)."""

    photons: torch.Tensor
    interpolating: torch.Tensor  # tricubic interpolation still on (always False unless "tricubic")
    stale_pending: torch.Tensor  # the stale first sweep still to come (always False unless stale_start)


def evaluate_chunk(variant: KernelVariant, slow: torch.Tensor, fast: torch.Tensor, x: KernelInputs) -> ChunkResult:
    """Photons for pixels (``slow``, ``fast``) (P,) int32, in nanoBragg's units, and the state after them.

    nanoBragg's quirks are reproduced as the variant says: unless factors are per sub-pixel, the
    solid angle, polarization and sensor capture are taken once per pixel (first sub-pixel, first
    evaluated source, and the last sensor layer's capture fraction applied to the sum over all
    layers); with ``running_product`` the per-sub-pixel factors multiply the running sum.
    """
    frame = x.frame
    P = slow.shape[0]
    pos = pixel_positions(frame, slow, fast, x.sub_index, x.layer_depths, variant.curved, variant.curved_lab_axes)
    airpath = pos.norm(dim=0)  # (T,Q,P)
    diffracted = pos / airpath

    weight: torch.Tensor | None = None  # factors folded into each contribution, (T,Q,1,P) or (T,Q,S,P)
    omega = solid_angle(frame, airpath, variant.point_pixel)  # (T,Q,P)
    if variant.omega_per_subpixel:
        weight = omega[:, :, None]
        pixel_factor = torch.ones_like(omega[0, 0])
    else:
        pixel_factor = omega[0, 0]
    if variant.absorbing_sensor:
        layers = torch.arange(x.layer_depths.shape[0], dtype=pos.dtype, device=pos.device)[:, None, None]
        parallax = (diffracted * frame.odet.view(3, 1, 1, 1)).sum(0)
        captured = capture_fraction(parallax, layers, x.attenuation_per_layer)  # (T,Q,P)
        if variant.capture_per_subpixel:
            weight = captured[:, :, None] if weight is None else weight * captured[:, :, None]
        else:
            pixel_factor = pixel_factor * captured[-1, 0]  # the last layer's, for the sum over all

    out = diffracted[:, :, :, None, :]  # (3,T,Q,1,P)

    def per_source(v: torch.Tensor) -> torch.Tensor:  # (S, 3) -> (3, 1, 1, S, 1)
        return v.T[:, None, None, :, None]

    scattering = (out - per_source(x.incident)) / x.wavelength[:, None]  # (3,T,Q,S,P), 1/m
    shape = scattering.shape[1:]
    keep = None
    if variant.dmin:
        stol = 0.5 * scattering.norm(dim=0)
        keep = ~(2.0 * x.dmin * stol > 1.0)  # nanoBragg skips sources with d < dmin

    if variant.polarized:
        polar = kahn_factor(
            x.kahn,
            (per_source(x.incident) * out).sum(0),
            (per_source(x.e_in) * out).sum(0),
            (per_source(x.b_in) * out).sum(0),
        )  # (T,Q,S,P)
        if variant.polar_per_subpixel:
            weight = polar if weight is None else weight * polar
        else:
            pixel_factor = pixel_factor * _first_evaluated(polar, keep)

    hkl, stale_pending = _miller_indices(variant, scattering, x, keep)
    f_latt = lattice_factor(variant.shape, hkl, x.N, x.reciprocal, x.fudge)  # (M, E)
    f_cell, interpolating = _structure_factors(variant, x.table, hkl, f_latt, keep, shape)
    per_orientation = (f_cell * f_latt) ** 2  # (M, E)
    if variant.running_product:
        total = _running_sum(variant, per_orientation, f_latt, keep, weight, x.background, shape)
        return ChunkResult(x.scale * total * pixel_factor, interpolating, stale_pending)
    per_evaluation = per_orientation.sum(0).view(shape)  # (T,Q,S,P)
    if keep is not None:
        per_evaluation = torch.where(keep, per_evaluation, 0.0)
    background = x.background
    if variant.background_per_evaluation:
        per_evaluation, background = per_evaluation + x.background, torch.zeros_like(x.background)
    if variant.source_weights:
        per_evaluation = per_evaluation * x.source_weight[:, None]
    if weight is not None:
        per_evaluation = per_evaluation * weight
    total = per_evaluation.reshape(-1, P).sum(0)
    return ChunkResult(x.scale * (background + total) * pixel_factor, interpolating, stale_pending)


def _miller_indices(
    variant: KernelVariant, scattering: torch.Tensor, x: KernelInputs, keep: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fractional Miller indices (3, M, E) of every scattering vector in every orientation.

    One matrix product writes them contiguously along E, which every later loop then streams
    through. With ``stale_start`` the run's first evaluation to reach the spindle loop (the first in
    nanoBragg's order not cut by -dmin) takes the first sweep's orientations; the second result says
    whether that evaluation is still to come (no evaluation of this chunk reached the loop).
    """
    M = x.orientations.shape[0] // 3
    flat = scattering.reshape(3, -1)
    hkl = torch.matmul(x.orientations, flat).view(3, M, -1)
    if not variant.stale_start:
        return hkl, torch.zeros((), dtype=torch.bool, device=hkl.device)
    order = _loop_order(scattering.shape[1:], 1, hkl.device)[0]  # (E,)
    beyond = order.numel()
    reached = order if keep is None else torch.where(keep.reshape(-1), order, beyond)
    first = reached.min()
    stale = torch.matmul(x.first_orientations, flat).view(3, M, -1)
    return torch.where(order == first, stale, hkl), first == beyond


def _structure_factors(
    variant: KernelVariant,
    table: StructureTable,
    hkl: torch.Tensor,
    f_latt: torch.Tensor,
    keep: torch.Tensor | None,
    shape: torch.Size,
) -> tuple[torch.Tensor, torch.Tensor]:
    """F_cell (M, E) (or default_F) and whether tricubic interpolation is still on afterwards."""
    off = torch.zeros((), dtype=torch.bool, device=hkl.device)
    if variant.structure == "default":
        return table.default_F, off
    nearest = lookup_nearest(table, nearest_index(hkl))
    if variant.structure == "nearest":
        return nearest, off
    if not variant.sticky:  # corrected: every evaluation whose stencil fits is interpolated
        return torch.where(interpolation_safe(table, hkl), lookup_tricubic(table, hkl), nearest), ~off
    return _interpolated(variant, table, hkl, f_latt, nearest, keep, shape)


def _interpolated(
    variant: KernelVariant,
    table: StructureTable,
    hkl: torch.Tensor,
    f_latt: torch.Tensor,
    nearest: torch.Tensor,
    keep: torch.Tensor | None,
    shape: torch.Size,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tricubic F_cell up to the first evaluation whose stencil leaves the table, nearest after it.

    nanoBragg tests the stencil only for evaluations it reaches (kept sources, non-zero F_latt,
    or every evaluation when water adds a background) and switches interpolation off for the rest
    of the run at the first failure, in its loop order.
    """
    M, E = f_latt.shape
    order = _loop_order(shape, M, hkl.device)
    safe = interpolation_safe(table, hkl)
    first_unsafe = torch.where(safe | ~_reached(variant, f_latt, keep), E * M, order).min()
    use = safe & (order < first_unsafe)
    return torch.where(use, lookup_tricubic(table, hkl), nearest), first_unsafe == E * M


def _reached(variant: KernelVariant, f_latt: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """(M, E): the evaluations nanoBragg's innermost loop acts on (it skips zero lattice factors
    unless water adds a background, and sources cut by -dmin)."""
    reached = torch.ones_like(f_latt, dtype=torch.bool) if variant.water else f_latt != 0
    return reached if keep is None else reached & keep.reshape(1, -1)


def _running_sum(
    variant: KernelVariant,
    per_orientation: torch.Tensor,
    f_latt: torch.Tensor,
    keep: torch.Tensor | None,
    weight: torch.Tensor | None,
    background: torch.Tensor,
    shape: torch.Size,
) -> torch.Tensor:
    """nanoBragg's pixel sum when -oversample_* multiplies its running total (see running_product).

    Every evaluation nanoBragg reaches adds its term and then multiplies the sum by its sub-pixel's
    factors, in nanoBragg's loop order: (layer, sub-pixel, source, orientation) per pixel.
    """
    T, Q, S, P = shape
    M = per_orientation.shape[0]

    def per_pixel(values: torch.Tensor) -> torch.Tensor:  # (M, T, Q, S, P) -> (P, T*Q*S*M), C order
        return values.reshape(M, T, Q, S, P).permute(4, 1, 2, 3, 0).reshape(P, -1)

    factors = torch.ones_like(per_orientation) if weight is None else weight.expand(T, Q, S, P).reshape(1, -1)
    factors = factors.expand(M, -1)
    reached = _reached(variant, f_latt, keep)
    start = background * torch.ones(P, dtype=per_orientation.dtype, device=per_orientation.device)
    return running_product(per_pixel(per_orientation), per_pixel(factors), per_pixel(reached), start)


def running_product(
    contributions: torch.Tensor, factors: torch.Tensor, reached: torch.Tensor, start: torch.Tensor
) -> torch.Tensor:
    """nanoBragg's ``I += x; I *= w`` over a pixel's evaluations, in its loop order.

    ``contributions``, ``factors`` and ``reached`` are (pixels, evaluations); an evaluation that C
    skips (``reached`` False) neither adds nor multiplies. ``start`` is the value I starts from (the
    water term). The result is start * prod(w) + sum_e x_e * prod_{e' >= e} w_e', computed with a
    reversed cumulative product so that it stays vectorised.
    """
    w = torch.where(reached, factors, torch.ones_like(factors))
    x = torch.where(reached, contributions, torch.zeros_like(contributions))
    suffix = torch.flip(torch.cumprod(torch.flip(w, dims=[1]), dim=1), dims=[1])  # prod_{e' >= e} w
    total = suffix[:, 0] if suffix.shape[1] else torch.ones_like(start)
    return start * total + (x * suffix).sum(dim=1)


def _loop_order(shape: torch.Size, M: int, device: torch.device) -> torch.Tensor:
    """nanoBragg's visiting order of each (orientation, evaluation) of a chunk, as (M, E) int64.

    ``shape`` is (T, Q, S, P), the layout behind the flat evaluation axis E.
    """
    T, Q, S, P = shape
    t = torch.arange(T, device=device).view(T, 1, 1, 1)
    q = torch.arange(Q, device=device).view(1, Q, 1, 1)
    s = torch.arange(S, device=device).view(1, 1, S, 1)
    p = torch.arange(P, device=device).view(1, 1, 1, P)
    evaluation = (((p * T + t) * Q + q) * S + s).reshape(1, -1)
    return evaluation * M + torch.arange(M, device=device)[:, None]


def _first_evaluated(values: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Per pixel, the value at the first (layer, sub-pixel, source) nanoBragg evaluates; 0 if none.

    ``values`` and ``keep`` are (T, Q, S, P).
    """
    flat = values.reshape(-1, values.shape[-1])
    if keep is None:
        return flat[0]
    kept = keep.reshape(-1, keep.shape[-1])
    first = kept.to(torch.uint8).argmax(dim=0, keepdim=True)
    return torch.where(kept.any(dim=0), flat.gather(0, first).squeeze(0), torch.zeros_like(flat[0]))
