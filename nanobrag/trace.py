"""The per-pixel trace of ``-printout`` / ``-printout_pixel``: nanoBragg's debugging printout.

nanoBragg prints, after simulating a pixel, the values its loop variables hold at that moment: the
last sub-pixel's position, the last source's sin(theta)/lambda, the last evaluation's Miller
indices, F_cell and F_latt, the accumulated sum I, the cached polarization, solid angle and capture
fraction, the pixel value and the last orientation of the cell. :func:`trace_pixel` re-evaluates
one pixel with the eager physics functions (independently of the renderer, so a trace also checks
the rendered value) and :meth:`PixelTrace.lines` prints it in nanoBragg's format.

One approximation: nanoBragg's interpolation switch depends on every pixel evaluated before; the
trace assumes it is still in the state the run started with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .beam import R_E_SQUARED, polarization_factor
from .detector import capture_fraction, detector_frame, pixel_positions, solid_angle
from .kernel import running_product
from .physics import lattice_factor
from .setup import Setup
from .structure import interpolation_safe, lookup_nearest, lookup_tricubic, nearest_index


@dataclass(frozen=True)
class PixelTrace:
    """nanoBragg's printout quantities for one pixel (SI units, as nanoBragg holds them)."""

    fast: int
    slow: int
    stol: float  # 1/m, last source at the last sub-pixel
    stol_from_angle: float  # 1/A, sin(theta)/lambda0 from the lab-frame angle of the last sub-pixel
    position: tuple[float, float, float]  # m, last sub-pixel of the last layer
    hkl: tuple[float, float, float]
    hkl0: tuple[int, int, int]
    F_cell: float
    F_latt: float
    I: float  # the accumulated sum before the division by steps
    steps: int
    polar: float
    omega: float
    capture: float
    pixel: float
    cell: tuple[tuple[float, ...], ...]  # rows a, b, c in Angstrom, last orientation evaluated

    def lines(self) -> list[str]:
        h, k, l = self.hkl
        h0, k0, l0 = self.hkl0
        x, y, z = self.position
        a, b, c = self.cell
        return [
            f"{self.fast:4d} {self.slow:4d} : stol = {self.stol:g} or {self.stol_from_angle:g}",
            f"at {x:g} {y:g} {z:g}",
            f"hkl= {h:f} {k:f} {l:f}  hkl0= {h0} {k0} {l0}",
            f" F_cell={self.F_cell:g}  F_latt={self.F_latt:g}   I = {self.I:g}",
            f"I/steps {self.I / self.steps:15.10g}",
            f"polar   {self.polar:15.10g}",
            f"omega   {self.omega:15.10g}",
            f"capfrac {self.capture:15.10g}",
            f"pixel   {self.pixel:15.10g}",
            "real-space cell vectors (Angstrom):",
            "     {:<10s}  {:<10s}  {:<10s}".format("a", "b", "c"),
            *(f"{axis}: {a[i]:11.8f} {b[i]:11.8f} {c[i]:11.8f}" for i, axis in enumerate("XYZ")),
        ]


def first_reaching_pixel(setup: Setup) -> tuple[int, int] | None:
    """(fast, slow) of the pixel holding the run's first evaluation that reaches the spindle loop:
    the first pixel in nanoBragg's order, less masked pixels, with a source not cut by -dmin."""
    from .renderer import roi_bounds

    row0, row1, col0, col1 = roi_bounds(setup)
    depths = torch.zeros(1, dtype=setup.dtype, device=setup.device)
    for slow in range(row0, row1 + 1):
        fast = torch.arange(col0, col1 + 1, device=setup.device)
        if setup.mask is not None:
            fast = fast[setup.mask[slow, col0 : col1 + 1]]
        if not fast.numel():
            continue
        if setup.dmin <= 0.0:
            return int(fast[0]), slow
        pos = _positions(setup, torch.full_like(fast, slow), fast, depths)
        direction = pos / pos.norm(dim=-1, keepdim=True)
        scattering = (direction[..., None, :] - setup.sources.incident) / setup.sources.wavelength[:, None]
        kept = ~(2.0 * setup.dmin * 0.5 * scattering.norm(dim=-1) > 1.0)
        reached = kept.reshape(fast.numel(), -1).any(dim=1).nonzero()
        if reached.numel():
            return int(fast[reached[0, 0]]), slow
    return None


@torch.no_grad()
def trace_pixel(setup: Setup, fast: int, slow: int, pixel: float) -> PixelTrace:
    """Re-evaluate pixel (``fast``, ``slow``) and collect what nanoBragg prints for it.

    ``pixel`` is the value the image holds there (nanoBragg prints its float image).
    """
    geom, sensor, sources = setup.geometry, setup.sensor, setup.sources
    det, bm = setup.config.detector, setup.config.beam
    dtype, device = setup.dtype, setup.device
    index = torch.tensor([slow], device=device), torch.tensor([fast], device=device)
    depths = sensor.step * torch.arange(sensor.steps, dtype=dtype, device=device)
    pos = _positions(setup, index[0], index[1], depths)[0]  # (T,Q,3)
    airpath = pos.norm(dim=-1)
    diffracted = pos / airpath[..., None]
    omega = solid_angle(detector_frame(geom), airpath, det.point_pixel)  # (T,Q)
    if sensor.thickness > 0.0:
        layers = torch.arange(sensor.steps, dtype=dtype, device=device)[:, None]
        capture = capture_fraction((diffracted * geom.odet).sum(-1), layers, sensor.step * sensor.mu)
    else:
        capture = torch.ones_like(omega)
    scattering = (diffracted[:, :, None, :] - sources.incident) / sources.wavelength[:, None]  # (T,Q,S,3)
    stol = 0.5 * scattering.norm(dim=-1)
    keep = ~(2.0 * setup.dmin * stol > 1.0) if setup.dmin > 0.0 else torch.ones_like(stol, dtype=torch.bool)
    if bm.nopolar:
        polar = torch.ones_like(stol)
    else:
        polar = polarization_factor(setup.kahn, sources.incident, diffracted[:, :, None, :], geom.polar)

    rows = setup.orientations.reshape(-1, 3, 3)  # (K, 3 rows a b c, 3 xyz)
    hkl = torch.einsum("tqsx,kcx->ctqsk", scattering, rows)  # component-first (3,T,Q,S,K)
    if setup.first_evaluation_orientations is not None and first_reaching_pixel(setup) == (fast, slow):
        # the stale phi-0 quirk: the run's first sweep sees the unrotated crystal (compat.py)
        first = int(keep.reshape(-1).nonzero()[0, 0])
        first_rows = setup.first_evaluation_orientations.reshape(-1, 3, 3)
        flat = hkl.reshape(3, -1, rows.shape[0]).clone()
        flat[:, first] = torch.einsum("x,kcx->ck", scattering.reshape(-1, 3)[first], first_rows)
        hkl = flat.view_as(hkl)
    f_latt = lattice_factor(setup.shape, hkl, setup.N, setup.lattice.reciprocal, setup.fudge)
    f_cell = _structure_factors(setup, hkl)
    contributions = (f_cell * f_latt) ** 2
    reached = keep[..., None] & ((f_latt != 0) | (bm.water_um != 0.0))

    factors = torch.ones_like(contributions)
    if setup.omega_per_subpixel:
        factors = factors * omega[:, :, None, None]
    if setup.capture_per_subpixel and sensor.thickness > 0.0:
        factors = factors * capture[:, :, None, None]
    if setup.polar_per_subpixel:
        factors = factors * polar[..., None]
    if sources.weight is not None:
        factors = factors * sources.weight[:, None]
    start = setup.background if not setup.background_per_evaluation else torch.zeros((), dtype=dtype, device=device)
    if setup.running_product:
        total = running_product(
            contributions.reshape(1, -1), factors.reshape(1, -1), reached.reshape(1, -1), start[None]
        )
    else:
        terms = torch.where(keep[..., None], contributions, 0.0)
        if setup.background_per_evaluation:
            terms = terms + setup.background / terms.shape[-1]
        total = start + (terms * factors).sum()

    kept = keep.reshape(-1).nonzero()
    first_kept = int(kept[0, 0]) if kept.numel() else None
    last_kept = int(kept[-1, 0]) if kept.numel() else None
    flat_reached = reached.reshape(-1).nonzero()
    last_reached = int(flat_reached[-1, 0]) if flat_reached.numel() else None

    def pick(values: torch.Tensor, flat_index: int | None, fallback: float = 0.0) -> float:
        return float(values.reshape(-1)[flat_index]) if flat_index is not None else fallback

    K = rows.shape[0]
    last_evaluation = (last_kept * K + K - 1) if last_kept is not None else None
    cached_polar = 1.0 if bm.nopolar else pick(polar, last_kept if setup.polar_per_subpixel else first_kept)
    h, k, l = (pick(component, last_evaluation) for component in hkl)
    hkl0 = (math.ceil(h - 0.5), math.ceil(k - 0.5), math.ceil(l - 0.5))
    last_rows = rows[-1] if last_evaluation is not None else rows[0]
    x, y, z = (float(v) for v in pos[-1, -1])
    twotheta = math.atan2(math.sqrt(y * y + z * z), x)
    lambda0 = bm.wavelength_A * 1e-10
    return PixelTrace(
        fast=fast,
        slow=slow,
        stol=float(stol[-1, -1, -1]),
        stol_from_angle=math.sin(twotheta / 2.0) / (lambda0 * 1e10),
        position=(x, y, z),
        hkl=(h, k, l),
        hkl0=hkl0,
        F_cell=pick(f_cell.expand_as(contributions), last_reached),
        F_latt=pick(f_latt, last_evaluation),
        I=float(total.reshape(())),
        steps=setup.steps,
        polar=cached_polar,
        omega=float(omega[-1, -1] if setup.omega_per_subpixel else omega[0, 0]),
        capture=1.0 if sensor.thickness == 0.0 else float(capture[-1, -1 if setup.capture_per_subpixel else 0]),
        pixel=pixel,
        cell=tuple(tuple(float(v) * 1e10 for v in row) for row in last_rows),
    )


def pixel_photons(trace: PixelTrace, setup: Setup) -> float:
    """The pixel value a trace implies: r_e^2 fluence I / steps times the factors applied per pixel."""
    value = R_E_SQUARED * float(setup.fluence) * trace.I / trace.steps
    if not setup.polar_per_subpixel:
        value *= trace.polar
    if not setup.omega_per_subpixel:
        value *= trace.omega
    if not setup.capture_per_subpixel:
        value *= trace.capture
    return value


def _structure_factors(setup: Setup, hkl: torch.Tensor) -> torch.Tensor:
    """F_cell per evaluation: tricubic where the run interpolates and the stencil fits, else nearest."""
    sf = setup.structure
    if sf.table is None:
        return sf.default_F.expand(hkl.shape[1:])
    table = sf.tensors()
    f_cell = lookup_nearest(table, nearest_index(hkl))
    if sf.interpolate:
        f_cell = torch.where(interpolation_safe(table, hkl), lookup_tricubic(table, hkl), f_cell)
    return f_cell


def _positions(setup: Setup, slow: torch.Tensor, fast: torch.Tensor, depths: torch.Tensor) -> torch.Tensor:
    """Sub-pixel positions (pixels, layers, sub-pixels, 3) of pixels (``slow``, ``fast``)."""
    geom = setup.geometry
    sub_index = torch.arange(setup.oversample, dtype=torch.int32, device=slow.device)
    pos = pixel_positions(
        detector_frame(geom), slow.int(), fast.int(), sub_index, depths, setup.config.detector.curved,
        geom.curved_lab_axes,
    )  # fmt: skip
    return pos.permute(3, 1, 2, 0)
