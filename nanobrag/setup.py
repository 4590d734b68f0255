"""From a typed configuration to tensors: units converted once, auto-selections resolved once.

:func:`build_setup` is the single place where nanoBragg's defaults and auto-selection rules (beam
centre, pivot, oversampling, phi/divergence/dispersion/mosaic/sensor sampling, interpolation) are
applied. Any continuous parameter listed in :data:`PARAMETERS` can be passed as a tensor; it then
flows through the whole geometry so the rendered image is differentiable with respect to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from . import beam as beam_mod
from .compat import Quirks, stale_phi_angles
from .config import CrystalShape, SimulationConfig, Vec3, check_cell_edges, mosflm_real_cell
from .crystal import (
    Lattice,
    PhiSweep,
    c_cell_lengths_m,
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
from .io.smv import RTD
from .sampling import DIVERGENCE, Sampling, complete_sampling
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
    """Everything :func:`nanobrag.renderer.render` needs, as tensors on one device and dtype."""

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
    # nanoBragg's quirks, resolved (nanobrag.compat): what the renderer does differently with -corrected
    quirks: Quirks = field(default_factory=Quirks)
    first_evaluation_orientations: torch.Tensor | None = None  # stale phi 0: the run's first evaluation's
    omega_per_subpixel: bool = False  # else the first sub-pixel's solid angle serves the whole pixel
    polar_per_subpixel: bool = False  # else the first evaluated polarization factor
    capture_per_subpixel: bool = False  # else the last layer's capture fraction, first sub-pixel
    running_product: bool = False  # per-sub-pixel factors multiply nanoBragg's running sum
    background_per_evaluation: bool = False  # background is a per-(layer, sub-pixel, source) term
    mask: torch.Tensor | None = None  # (spixels, fpixels) bool: pixels to simulate
    random_misset_deg: tuple[float, float, float] | None = None  # the angles -misset random drew

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


# value(name, configured): parameter ``name`` if one was passed, else the configured value, as a tensor.
ValueOf = Callable[[str, float], torch.Tensor]
Device = torch.device | str | None


def build_setups(
    config: SimulationConfig | Sequence[SimulationConfig],
    *,
    params: Mapping[str, torch.Tensor] | None = None,
    dtype: torch.dtype | None = None,
    device: Device = None,
) -> list[Setup]:
    """A batch of setups for :func:`nanobrag.renderer.render_batch`, one per entry of a leading axis.

    ``params`` values of shape (batch,) give entry i the value ``[i]`` (0-d values are shared);
    ``config`` is one configuration shared by every entry or a sequence with one per entry. The
    batch size is the common length; a mismatch is an InputError. Indexing keeps the autograd
    graph, so a gradient with respect to a batched parameter has one entry per setup.
    """
    params = dict(params or {})
    configs = [config] if isinstance(config, SimulationConfig) else list(config)
    if not configs:
        raise InputError("build_setups needs at least one configuration")
    lengths = {name: int(value.shape[0]) for name, value in params.items() if torch.as_tensor(value).dim() == 1}
    wrong = [name for name, value in params.items() if torch.as_tensor(value).dim() > 1]
    if wrong:
        raise InputError(f"batched parameters are 1-d (batch,); {', '.join(wrong)} has more dimensions")
    sizes = set(lengths.values()) | ({len(configs)} if len(configs) > 1 else set())
    if len(sizes) > 1:
        named = [f"{name}: {n}" for name, n in lengths.items()]
        if len(configs) > 1:
            named.append(f"configs: {len(configs)}")
        raise InputError(f"batch sizes disagree ({', '.join(named)})")
    batch = sizes.pop() if sizes else 1
    return [
        build_setup(
            configs[index if len(configs) > 1 else 0],
            params={name: value[index] if name in lengths else value for name, value in params.items()},
            dtype=dtype,
            device=device,
        )
        for index in range(batch)
    ]


def _choose_dtype_device(
    params: Mapping[str, torch.Tensor], dtype: torch.dtype | None, device: Device
) -> tuple[torch.dtype, torch.device]:
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
    device: Device = None,
) -> Setup:
    """Resolve ``config`` into the tensors the renderer needs, applying every nanoBragg default once.

    Convention: units are converted to SI here (metres, radians); nanoBragg's defaults and automatic
    choices (beam centre, pivot, oversampling, sampling of phi, divergence, dispersion, mosaic domains
    and sensor layers, interpolation) are applied here and nowhere else. The discrete choices are
    plain integers computed from detached values.

    Args:
        config: the simulation settings, in nanoBragg's units.
        params: tensors that replace continuous settings, by name (:data:`PARAMETERS`, in the flags'
            units); the image is differentiable with respect to each.
        dtype: the dtype of every tensor (default: that of the first parameter, else float64).
        device: the device of every tensor (default: that of the first parameter, else CPU).

    Returns:
        The :class:`Setup`.

    Raises:
        InputError: an unknown parameter, no crystal, a cell parameter of a MOSFLM-matrix crystal, a
            divergence grid that keeps no source, or input files that fail to read.

    Example:
        >>> from nanobrag.fixtures import triclinic_fixture
        >>> setup = build_setup(triclinic_fixture(), dtype=torch.float32)
        >>> setup.shape_2d, setup.dtype, setup.oversample
        ((16, 16), torch.float32, 2)
    """
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
    quirks = Quirks.of(config.corrected)
    wavelength_A = value("wavelength", bm.wavelength_A)
    wavelength = wavelength_A * 1e-10

    lattice, random_misset_deg, cell_values, misset_rad = _build_lattice(config, value, params, wavelength_A)

    geometry = detector_geometry(
        det,
        distance=value("distance", det.distance_mm) / 1000.0,
        beam_x=value("beam_x", det.Xbeam_mm or 0.0) / 1000.0
        if ("beam_x" in params or det.Xbeam_mm is not None)
        else None,
        beam_y=value("beam_y", det.Ybeam_mm or 0.0) / 1000.0
        if ("beam_y" in params or det.Ybeam_mm is not None)
        else None,
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
        honour_pix0=not quirks.pix0_vector_ignored,
        curved_lab_axes=quirks.curved_detector_lab_axes,
    )

    # The cell lengths that decide the crystal size in cells and the oversampling, in C's arithmetic.
    real_lengths_m = list(
        c_cell_lengths_m(
            tuple(float(v) for v in cell_values) if cell_values is not None else None,
            xtal.mosflm_matrix,
            misset_rad,
            float(wavelength_A.detach()),
            RTD,
        )
    )
    xtalsize_m = _clipped_crystal_size(config)
    cells = crystal_size_in_cells(real_lengths_m, xtal.N, xtalsize_m)
    N = torch.stack([value("N_a", cells[0]), value("N_b", cells[1]), value("N_c", cells[2])])

    phi = resolve_phi_sweep(xtal.phi0_deg, xtal.osc_deg, xtal.phistep_deg, xtal.phisteps)
    spindle = spindle_rotations(phi, geometry.spindle)
    first_spindle = None
    if quirks.stale_phi0:
        steady, first = stale_phi_angles(phi.start, phi.step, phi.steps)
        nominal = [phi.start + phi.step * tic for tic in range(phi.steps)]
        if steady != nominal:
            spindle = spindle_rotations(phi, geometry.spindle, steady)
        if first != steady:
            first_spindle = spindle_rotations(phi, geometry.spindle, first)
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

    def orient(rotations: torch.Tensor) -> torch.Tensor:
        # a_rot = U_mosaic R_phi a0, as rows: a0^T R^T U^T
        return real_m @ rotations.transpose(-1, -2)[:, None] @ mosaic.transpose(-1, -2)[None]

    orientations = orient(spindle)

    sources = _build_sources(config, geometry, value, params, wavelength, quirks)
    if sources.count == 0:
        raise InputError(
            "the divergence grid keeps no source (the elliptical cut removes every point); nanoBragg would"
            " divide by zero. Give -square_div, or other -hdiv*/-vdiv* values"
        )
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
    structure = _build_structure(config, value, quirks)
    sensor = resolve_sensor(det)
    background = beam_mod.water_background(fluence, bm.water_um)
    if not quirks.water_background_per_step:
        # Corrected: I_bg photons per steradian once per pixel, through the same per-sub-pixel factors
        # as the crystal; as a term of every (layer, sub-pixel, source) evaluation, before the r_e^2 *
        # fluence / steps scaling that the evaluations receive (steps counts phi x domains too).
        phisteps, domains = orientations.shape[:2]
        background = background * (phisteps * domains) / (beam_mod.R_E_SQUARED * fluence)
    per_subpixel = not quirks.first_subpixel_factors

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
        sensor=sensor,
        oversample=oversample,
        roi=resolve_roi(det, geometry.grid),
        sources=sources,
        kahn=value("polarization", bm.polarization),
        fluence=fluence,
        background=background,
        dmin=bm.dmin_A * 1e-10,
        structure=structure,
        wavelength=wavelength,
        quirks=quirks,
        first_evaluation_orientations=orient(first_spindle) if first_spindle is not None else None,
        omega_per_subpixel=det.oversample_omega or per_subpixel,
        polar_per_subpixel=det.oversample_polar or per_subpixel,
        capture_per_subpixel=det.oversample_thick or per_subpixel,
        running_product=quirks.oversample_running_product
        and (det.oversample_omega or det.oversample_polar or (det.oversample_thick and sensor.thickness > 0.0)),
        background_per_evaluation=not quirks.water_background_per_step,
        mask=_read_mask(config, geometry, device),
        random_misset_deg=random_misset_deg,
    )


def _build_lattice(
    config: SimulationConfig, value: ValueOf, params: Mapping[str, torch.Tensor], wavelength_A: torch.Tensor
) -> tuple[Lattice, Vec3 | None, list[float] | None, Vec3]:
    """The lattice after misset; the random misset angles (deg) when -misset random drew them; and the
    cell (A, deg) and misset (rad, as nanoBragg converts them) that went in, as plain numbers."""
    xtal = config.crystal
    misset_deg = xtal.misset_deg or (0.0, 0.0, 0.0)
    drawn = None
    names = ("misset_x", "misset_y", "misset_z")
    if xtal.misset_random:
        from .rng import random_misset_angles

        seed = xtal.misset_seed if xtal.misset_seed is not None else _time_seed()
        x, y, z = misset_rad = random_misset_angles(seed)
        misset_deg = drawn = (math.degrees(x), math.degrees(y), math.degrees(z))
    else:
        x, y, z = (float(value(name, deg).detach()) / RTD for name, deg in zip(names, misset_deg))
        misset_rad = (x, y, z)
    misset = torch.deg2rad(torch.stack([value(name, deg) for name, deg in zip(names, misset_deg)]))
    oriented = None
    if xtal.mosflm_matrix is not None:
        oriented = torch.tensor(xtal.mosflm_matrix, dtype=misset.dtype, device=misset.device)
        if xtal.cell is None:
            cell_params = sorted(name for name in params if name.startswith("cell_"))
            if cell_params:
                raise InputError(f"{', '.join(cell_params)} cannot be set for a crystal given as a MOSFLM matrix")
            # The matrix is scaled by the wavelength, so only now is the size of its cell known.
            at_A = float(wavelength_A.detach())
            try:
                check_cell_edges(
                    mosflm_real_cell(xtal.mosflm_matrix, at_A)[0], f"-mat: at {at_A:g} A the matrix gives "
                )
            except ValueError as err:
                raise InputError(str(err)) from None
            return lattice_from_mosflm(oriented, wavelength_A, misset), drawn, None, misset_rad
        # -mat with -cell: nanoBragg orients the cell by the matrix and keeps the cell's lengths and volume.
        oriented = oriented.T / wavelength_A
    if xtal.cell is None:
        raise InputError("no crystal: give a unit cell (-cell) or an orientation matrix (-mat)")
    a, b, c, alpha, beta, gamma = xtal.cell  # CrystalConfig completed it as nanoBragg does
    lengths = torch.stack([value("cell_a", a), value("cell_b", b), value("cell_c", c)])
    degrees = torch.stack([value("cell_alpha", alpha), value("cell_beta", beta), value("cell_gamma", gamma)])
    lattice = lattice_from_cell(lengths, torch.deg2rad(degrees), misset, reciprocal=oriented)
    return lattice, drawn, torch.cat([lengths, degrees]).detach().tolist(), misset_rad


def _time_seed() -> int:
    import time

    return int(time.time())


def _clipped_crystal_size(config: SimulationConfig) -> tuple[float | None, ...]:
    """-xtalsize in metres; nanoBragg clips the two dimensions across the beam to the beam size."""
    sizes = [s / 1000.0 if s is not None else None for s in config.crystal.xtalsize_mm]
    beamsize = config.beam.beamsize_mm / 1000.0
    for axis in (1, 2):
        size = sizes[axis]
        if size is not None and beamsize >= 0 and beamsize < size:
            sizes[axis] = beamsize
    return tuple(sizes)


def _read_mask(config: SimulationConfig, geometry: DetectorGeometry, device: torch.device) -> torch.Tensor | None:
    """-mask: the pixels to simulate (non-zero in the SMV mask), on the detector's pixel grid.

    Like nanoBragg, the mask's pixels are read in order onto the detector's grid, so a mask for
    another detector shape is reinterpreted; a mask with fewer pixels than the detector is refused
    (nanoBragg would read past its end).
    """
    path = config.detector.mask_path
    if path is None:
        return None
    from .io.smv import read_smv

    _, pixels = read_smv(path)
    shape = (geometry.grid.spixels, geometry.grid.fpixels)
    if pixels.size < shape[0] * shape[1]:
        raise InputError(
            f"-mask: {path} has {pixels.shape[1]}x{pixels.shape[0]} pixels, fewer than the detector's"
            f" {shape[1]}x{shape[0]}"
        )
    return torch.as_tensor(pixels.reshape(-1)[: shape[0] * shape[1]].reshape(shape) != 0, device=device)


def _build_sources(
    config: SimulationConfig,
    geometry: DetectorGeometry,
    value: ValueOf,
    params: Mapping[str, torch.Tensor],
    wavelength: torch.Tensor,
    quirks: Quirks,
) -> beam_mod.Sources:
    bm = config.beam
    if bm.sourcefile is not None:
        from .io.sources import read_sourcefile

        table = read_sourcefile(bm.sourcefile)
        sources = beam_mod.file_sources(table, geometry.beam, wavelength, bm.sourcefile)
        if not quirks.source_weights_ignored:
            intensities = torch.as_tensor(table[:, 3], dtype=wavelength.dtype, device=wavelength.device)
            sources.weight = beam_mod.source_weights(torch.nan_to_num(intensities, nan=1.0))  # missing: 1, as in C
        return sources

    hdiv, vdiv, disp = resolved_beam_sampling(config)
    hdiv = _rescale(hdiv, "hdivrange", 1e-3, params, value)
    vdiv = _rescale(vdiv, "vdivrange", 1e-3, params, value)
    disp = _rescale(disp, "dispersion", 1e-2, params, value)
    return beam_mod.generated_sources(bm, geometry.beam, geometry.polar, wavelength, hdiv, vdiv, disp)


def resolved_beam_sampling(config: SimulationConfig) -> tuple[Sampling, Sampling, Sampling]:
    """Horizontal and vertical divergence (radians) and dispersion (fraction) after nanoBragg's rules."""
    bm = config.beam

    def mrad(x: float | None) -> float | None:
        return x / 1000.0 if x is not None else None

    def pct(x: float | None) -> float | None:
        return x / 100.0 if x is not None else None

    return (
        complete_sampling(mrad(bm.hdivrange_mrad), mrad(bm.hdivstep_mrad), bm.hdivsteps, DIVERGENCE),
        complete_sampling(mrad(bm.vdivrange_mrad), mrad(bm.vdivstep_mrad), bm.vdivsteps, DIVERGENCE),
        complete_sampling(pct(bm.dispersion_pct), pct(bm.dispstep_pct), bm.dispsteps, DIVERGENCE),
    )


def _rescale(
    sampling: Sampling, name: str, unit: float, params: Mapping[str, torch.Tensor], value: ValueOf
) -> Sampling:
    """Replace a sampling's range by parameter ``name``, scaling its step with it (the grid stays fixed)."""
    if name not in params:
        return sampling
    if sampling.range == 0.0:
        raise InputError("a divergence or dispersion parameter needs a non-zero configured range to scale")
    rng = value(name, 0.0) * unit  # the parameter, on the setup's dtype and device
    return Sampling(range=rng, step=sampling.step * rng / sampling.range, steps=sampling.steps)


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


def _build_structure(config: SimulationConfig, value: ValueOf, quirks: Quirks) -> StructureFactors:
    sf_cfg = config.structure
    default_F = value("default_F", sf_cfg.default_F)
    table = None
    if sf_cfg.hkl_path is not None or (sf_cfg.dump_path is not None and sf_cfg.dump_path.is_file()):
        from .io.hkl import load_structure_factors

        table = load_structure_factors(sf_cfg)
    if table is None or table.count == 0:
        return StructureFactors(default_F=default_F)
    interpolate = sf_cfg.interpolate
    if interpolate is None:
        # nanoBragg decides on the typed -N/-Na/-Nb/-Nc counts, before -xtalsize sets the sizes.
        interpolate = min(config.crystal.N) <= 2
    return StructureFactors(
        default_F=default_F,
        table=torch.as_tensor(table.F, dtype=default_F.dtype, device=default_F.device),
        lower=(table.h_min, table.k_min, table.l_min),
        interpolate=bool(interpolate),
        count=table.count,
        sticky=quirks.sticky_interpolation,
    )
