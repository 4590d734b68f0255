"""From a typed configuration to tensors: units converted once, auto-selections resolved once.

:func:`build_setup` is the single place where nanoBragg's defaults and auto-selection rules (beam
centre, pivot, oversampling, phi/divergence/dispersion/mosaic/sensor sampling, interpolation) are
applied. Any continuous parameter listed in :data:`PARAMETERS` can be passed as a tensor; it then
flows through the whole geometry so the rendered image is differentiable with respect to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from . import beam as beam_mod
from .config import CrystalShape, SimulationConfig
from .crystal import (
    Lattice,
    PhiSweep,
    crystal_size_in_cells,
    lattice_from_cell,
    lattice_from_mosflm,
    mosaic_rotations,
    resolve_mosaic,
    resolve_phi_sweep,
    spindle_rotations,
)
from .detector import DetectorGeometry, SensorLayers, detector_geometry, resolve_roi, resolve_sensor
from .errors import InputError
from .structure import StructureFactors

# name -> (unit, meaning). Values are in the units of the matching command-line flag.
PARAMETERS: dict[str, tuple[str, str]] = {
    "cell_a": ("A", "unit-cell length a"),
    "cell_b": ("A", "unit-cell length b"),
    "cell_c": ("A", "unit-cell length c"),
    "cell_alpha": ("deg", "unit-cell angle alpha"),
    "cell_beta": ("deg", "unit-cell angle beta"),
    "cell_gamma": ("deg", "unit-cell angle gamma"),
    "misset_x": ("deg", "crystal misset rotation about x"),
    "misset_y": ("deg", "crystal misset rotation about y"),
    "misset_z": ("deg", "crystal misset rotation about z"),
    "N_a": ("cells", "crystal size along a"),
    "N_b": ("cells", "crystal size along b"),
    "N_c": ("cells", "crystal size along c"),
    "mosaic_spread": ("deg", "mosaic spread"),
    "default_F": ("electrons", "structure factor of reflections missing from the table"),
    "distance": ("mm", "crystal-to-detector distance (-distance)"),
    "beam_x": ("mm", "-Xbeam"),
    "beam_y": ("mm", "-Ybeam"),
    "detector_rotx": ("deg", "detector rotation about x"),
    "detector_roty": ("deg", "detector rotation about y"),
    "detector_rotz": ("deg", "detector rotation about z"),
    "twotheta": ("deg", "detector two-theta swing"),
    "wavelength": ("A", "central wavelength"),
    "dispersion": ("%", "spectral dispersion (full range)"),
    "hdivrange": ("mrad", "horizontal divergence (full range)"),
    "vdivrange": ("mrad", "vertical divergence (full range)"),
    "fluence": ("photons/m^2", "incident fluence"),
    "polarization": ("", "Kahn polarization factor"),
}


@dataclass
class Setup:
    """Everything :func:`nanobrag.simulate.render` needs, as tensors on one device and dtype."""

    config: SimulationConfig
    lattice: Lattice
    orientations: torch.Tensor  # (phisteps, domains, 3, 3): rows a, b, c in metres per orientation
    N: torch.Tensor  # (3,)
    shape: CrystalShape
    fudge: float
    phi: PhiSweep
    mosaic_spread_deg: float
    geometry: DetectorGeometry
    sensor: SensorLayers
    oversample: int
    roi: tuple[int, int, int, int]
    sources: beam_mod.Sources
    kahn: torch.Tensor
    fluence: torch.Tensor
    background: torch.Tensor  # water term per pixel, before scaling
    dmin: float  # metres; 0 disables
    structure: StructureFactors
    wavelength: torch.Tensor  # central wavelength, metres

    @property
    def dtype(self) -> torch.dtype:
        return self.geometry.pix0.dtype

    @property
    def device(self) -> torch.device:
        return self.geometry.pix0.device

    @property
    def shape_2d(self) -> tuple[int, int]:
        return self.geometry.grid.spixels, self.geometry.grid.fpixels

    @property
    def steps(self) -> int:
        """nanoBragg's divisor: sources x mosaic domains x phi steps x sub-pixels."""
        phisteps, domains = self.orientations.shape[:2]
        return self.sources.count * domains * phisteps * self.oversample**2


def _choose_dtype_device(params: Mapping[str, torch.Tensor], dtype, device) -> tuple[torch.dtype, torch.device]:
    tensors = [t for t in params.values() if isinstance(t, torch.Tensor)]
    if dtype is None:
        dtype = tensors[0].dtype if tensors and tensors[0].is_floating_point() else torch.float64
    if device is None:
        device = tensors[0].device if tensors else torch.device("cpu")
    return dtype, torch.device(device)


def build_setup(
    config: SimulationConfig,
    *,
    params: Mapping[str, torch.Tensor] | None = None,
    dtype: torch.dtype | None = None,
    device=None,
) -> Setup:
    """Resolve ``config`` into tensors; ``params`` override continuous values (see :data:`PARAMETERS`)."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise InputError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}")
    dtype, device = _choose_dtype_device(params, dtype, device)

    def value(name: str, default: float) -> torch.Tensor:
        if name in params:
            return torch.as_tensor(params[name], device=device).to(dtype)
        return torch.tensor(float(default), dtype=dtype, device=device)

    xtal, det, bm = config.crystal, config.detector, config.beam
    wavelength_A = value("wavelength", bm.wavelength_A)
    wavelength = wavelength_A * 1e-10

    lattice = _build_lattice(config, value, params, wavelength_A)

    geometry = detector_geometry(
        det,
        distance=value("distance", det.distance_mm) / 1000.0,
        beam_x=value("beam_x", det.Xbeam_mm) / 1000.0 if ("beam_x" in params or det.Xbeam_mm is not None) else None,
        beam_y=value("beam_y", det.Ybeam_mm) / 1000.0 if ("beam_y" in params or det.Ybeam_mm is not None) else None,
        rotations=torch.deg2rad(
            torch.stack(
                [
                    value("detector_rotx", det.rotx_deg),
                    value("detector_roty", det.roty_deg),
                    value("detector_rotz", det.rotz_deg),
                ]
            )
        ),
        twotheta=torch.deg2rad(value("twotheta", det.twotheta_deg)),
        spindle_axis=xtal.spindle_axis,
    )

    real_lengths_m = [float(v) * 1e-10 for v in lattice.real.detach().norm(dim=-1)]
    xtalsize_m = _clipped_crystal_size(config)
    cells = crystal_size_in_cells(real_lengths_m, xtal.N, xtalsize_m)
    N = torch.stack([value("N_a", cells[0]), value("N_b", cells[1]), value("N_c", cells[2])])

    phi = resolve_phi_sweep(xtal.phi0_deg, xtal.osc_deg, xtal.phistep_deg, xtal.phisteps)
    spindle = spindle_rotations(phi, geometry.spindle)
    # The domain count is chosen from the spread the physics uses (a parameter, if one is given).
    spread_deg = (
        float(torch.as_tensor(params["mosaic_spread"]).detach())
        if "mosaic_spread" in params
        else xtal.mosaic_spread_deg
    )
    spread_deg, domains = resolve_mosaic(spread_deg, xtal.mosaic_domains)
    if spread_deg > 0.0:
        from .rng import mosaic_domain_draws

        axes, factors = mosaic_domain_draws(domains, xtal.mosaic_seed)
        mosaic = mosaic_rotations(
            torch.as_tensor(axes, dtype=dtype, device=device),
            torch.as_tensor(factors, dtype=dtype, device=device),
            torch.deg2rad(value("mosaic_spread", spread_deg)),
        )
    else:
        mosaic = torch.eye(3, dtype=dtype, device=device)[None].expand(domains, 3, 3)
    real_m = lattice.real * 1e-10
    # a_rot = U_mosaic R_phi a0, as rows: a0^T R^T U^T
    orientations = real_m @ spindle.transpose(-1, -2)[:, None] @ mosaic.transpose(-1, -2)[None]

    sources = _build_sources(config, geometry, value, params, wavelength)
    # The automatic oversampling sees the wavelength the physics uses (a parameter, if one is given).
    rule_wavelength_A = float(wavelength_A.detach()) if "wavelength" in params else bm.wavelength_A
    oversample = _resolve_oversample(
        det.oversample,
        real_lengths_m,
        cells,
        rule_wavelength_A * 1e-10,
        float(geometry.distance.detach()),
        geometry.grid.pixel_size,
    )
    fluence = value("fluence", beam_mod.resolve_fluence(bm))
    structure = _build_structure(config, value, cells)

    return Setup(
        config=config,
        lattice=lattice,
        orientations=orientations,
        N=N,
        shape=xtal.shape,
        fudge=xtal.fudge,
        phi=phi,
        mosaic_spread_deg=spread_deg,
        geometry=geometry,
        sensor=resolve_sensor(det),
        oversample=oversample,
        roi=resolve_roi(det, geometry.grid),
        sources=sources,
        kahn=value("polarization", bm.polarization),
        fluence=fluence,
        background=beam_mod.water_background(fluence, bm.water_um),
        dmin=bm.dmin_A * 1e-10,
        structure=structure,
        wavelength=wavelength,
    )


def _build_lattice(config: SimulationConfig, value, params, wavelength_A: torch.Tensor) -> Lattice:
    xtal = config.crystal
    misset_deg = xtal.misset_deg or (0.0, 0.0, 0.0)
    if xtal.misset_random:
        from .rng import random_misset_angles

        seed = xtal.misset_seed if xtal.misset_seed is not None else _time_seed()
        misset_deg = tuple(math.degrees(a) for a in random_misset_angles(seed))
    misset = torch.deg2rad(
        torch.stack(
            [value("misset_x", misset_deg[0]), value("misset_y", misset_deg[1]), value("misset_z", misset_deg[2])]
        )
    )
    if xtal.mosflm_matrix is not None:
        cell_params = sorted(name for name in params if name.startswith("cell_"))
        if cell_params:
            raise InputError(f"{', '.join(cell_params)} cannot be set for a crystal given as a MOSFLM matrix")
        matrix = torch.tensor(xtal.mosflm_matrix, dtype=misset.dtype, device=misset.device)
        return lattice_from_mosflm(matrix, wavelength_A, misset)
    if xtal.cell is None:
        raise InputError("no crystal: give a unit cell (-cell) or an orientation matrix (-mat)")
    a, b, c, alpha, beta, gamma = xtal.cell
    # nanoBragg's defaults for an incomplete cell: b and c copy a, angles are right angles.
    b = b if b > 0 else a
    c = c if c > 0 else a
    alpha, beta, gamma = (ang if ang > 0 else 90.0 for ang in (alpha, beta, gamma))
    lengths = torch.stack([value("cell_a", a), value("cell_b", b), value("cell_c", c)])
    angles = torch.deg2rad(
        torch.stack([value("cell_alpha", alpha), value("cell_beta", beta), value("cell_gamma", gamma)])
    )
    return lattice_from_cell(lengths, angles, misset)


def _time_seed() -> int:
    import time

    return int(time.time())


def _clipped_crystal_size(config: SimulationConfig) -> tuple[float | None, ...]:
    """-xtalsize in metres; nanoBragg clips the two dimensions across the beam to the beam size."""
    sizes = [s / 1000.0 if s is not None else None for s in config.crystal.xtalsize_mm]
    beamsize = config.beam.beamsize_mm / 1000.0
    for axis in (1, 2):
        if sizes[axis] is not None and beamsize >= 0 and beamsize < sizes[axis]:
            sizes[axis] = beamsize
    return tuple(sizes)


def _build_sources(config: SimulationConfig, geometry: DetectorGeometry, value, params, wavelength):
    bm = config.beam
    if bm.sourcefile is not None:
        from .io.sources import read_sourcefile

        return beam_mod.file_sources(read_sourcefile(bm.sourcefile), geometry.beam, wavelength)

    def mrad(x: float | None) -> float | None:
        return x / 1000.0 if x is not None else None

    def pct(x: float | None) -> float | None:
        return x / 100.0 if x is not None else None

    hdiv = beam_mod.resolve_sampling(mrad(bm.hdivrange_mrad), mrad(bm.hdivstep_mrad), bm.hdivsteps)
    vdiv = beam_mod.resolve_sampling(mrad(bm.vdivrange_mrad), mrad(bm.vdivstep_mrad), bm.vdivsteps)
    disp = beam_mod.resolve_sampling(pct(bm.dispersion_pct), pct(bm.dispstep_pct), bm.dispsteps)
    hdiv = _rescale(hdiv, "hdivrange", 1e-3, params, value)
    vdiv = _rescale(vdiv, "vdivrange", 1e-3, params, value)
    disp = _rescale(disp, "dispersion", 1e-2, params, value)
    return beam_mod.generated_sources(bm, geometry.beam, geometry.polar, wavelength, hdiv, vdiv, disp)


def _rescale(sampling: beam_mod.Sampling, name: str, unit: float, params, value) -> beam_mod.Sampling:
    """Replace a sampling's range by parameter ``name``, scaling its step with it (the grid stays fixed)."""
    if name not in params:
        return sampling
    if sampling.range == 0.0:
        raise InputError("a divergence or dispersion parameter needs a non-zero configured range to scale")
    rng = value(name, 0.0) * unit  # the parameter, on the setup's dtype and device
    return beam_mod.Sampling(range=rng, step=sampling.step * rng / sampling.range, steps=sampling.steps)


def _resolve_oversample(
    requested: int | None,
    lengths_m: list[float],
    cells: tuple[float, float, float],
    wavelength_m: float,
    distance_m: float,
    pixel_m: float,
) -> int:
    """nanoBragg's rule: enough sub-pixels that the largest crystal dimension's fringes are resolved."""
    if requested is not None and requested > 0:
        return requested
    xtalsize_max = max(length * n for length, n in zip(lengths_m, cells))
    reciprocal_pixel = wavelength_m * distance_m / pixel_m
    if not 0.0 < reciprocal_pixel < math.inf:
        raise InputError(
            f"automatic oversampling needs a non-zero, finite detector distance (got {distance_m * 1000:g} mm)"
            " and wavelength; give -distance, or -oversample N"
        )
    return max(1, math.ceil(3.0 * xtalsize_max / reciprocal_pixel))


def _build_structure(config: SimulationConfig, value, cells) -> StructureFactors:
    sf_cfg = config.structure
    default_F = value("default_F", sf_cfg.default_F)
    table = None
    if sf_cfg.hkl_path is not None or (sf_cfg.dump_path is not None and sf_cfg.dump_path.exists()):
        from .io.hkl import load_structure_factors

        table = load_structure_factors(sf_cfg)
    if table is None or table.count == 0:
        return StructureFactors(default_F=default_F)
    interpolate = sf_cfg.interpolate
    if interpolate is None:
        interpolate = min(cells) <= 2
    return StructureFactors(
        default_F=default_F,
        table=torch.as_tensor(table.F, dtype=default_F.dtype, device=default_F.device),
        lower=(table.h_min, table.k_min, table.l_min),
        interpolate=bool(interpolate),
    )
