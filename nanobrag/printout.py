"""The geometry printout: what nanoBragg prints before it simulates, line for line.

Users compare these lines between runs and between programs (cell and reciprocal vectors, beam
centres, detector axes, sources, sampling), so they are nanoBragg's own lines and number formats,
computed from the resolved :class:`~nanobrag.setup.Setup`. Only the banner differs. What nanoBragg
prints while and after it simulates (progress, traces, statistics) comes from the command.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from . import __version__
from .beam import AVOGADRO, divergence_grid
from .config import CrystalShape, Pivot
from .detector import resolve_axes
from .io.smv import RTD
from .setup import Setup, resolved_beam_sampling

_SHAPES = {
    CrystalShape.ROUND: "ellipsoidal",
    CrystalShape.SQUARE: "parallelpiped",  # nanoBragg's spelling
    CrystalShape.GAUSS: "gaussian",
    CrystalShape.TOPHAT: "tophat-spot",
}


def _vec(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.detach().cpu().to(torch.float64)]


def _scalar(t: torch.Tensor | float) -> float:
    return float(t.detach()) if isinstance(t, torch.Tensor) else float(t)


def geometry_lines(
    setup: Setup,
    *,
    headers_read: Sequence[Path] = (),
    matrix_file: Path | None = None,
    amorphous_table: Path | None = None,
    noise_seed: int | None = None,
) -> list[str]:
    """nanoBragg's printout for ``setup``.

    The files are named as the command line names them: SMV headers (-mask, -img), the -mat file
    and the -stol table. ``noise_seed`` is the seed of the noise image, None when none is written.
    """
    config = setup.config
    xtal, det, bm, sf = config.crystal, config.detector, config.beam, config.structure
    geom, sensor = setup.geometry, setup.sensor
    lines = [f"nanobrag {__version__}: nanoBragg-compatible diffraction simulator (PyTorch)"]
    lines += [f"reading {path}" for path in headers_read]
    lines += _warnings_before(setup)
    lines.append(f"{det.convention.value} convention selected.")
    if geom.pivot is Pivot.SAMPLE:
        lines.append("pivoting detector around sample")
    else:
        lines.append("pivoting detector around direct beam spot")
    beam, fdet, sdet, odet = geom.beam, geom.fdet, geom.sdet, geom.odet
    incident = [_scalar(beam @ fdet), _scalar(beam @ sdet), _scalar(beam @ odet)]
    lines.append("XDS incident beam: {:g} {:g} {:g}".format(*incident))
    if sf.interpolate is None:
        if min(xtal.N) <= 2:
            lines.append("auto-selected tricubic interpolation of structure factors")
        else:
            lines.append("auto-selected no interpolation")
    if matrix_file is not None:
        lines.append(f"reading {matrix_file}")
    if setup.random_misset_deg is not None:
        lines.append("random orientation misset angles: {:f} {:f} {:f} deg".format(*setup.random_misset_deg))
    lines += _cell_lines(setup)
    lines += _sampling_lines(setup)
    lines += _structure_factor_lines(setup)
    if amorphous_table is not None:
        lines.append(f"reading {amorphous_table}")
    for tic in range(sensor.steps):
        lines.append(f"thick{tic} = {sensor.step * tic * 1e6:g} um")
    for tic in range(setup.phi.steps):
        lines.append(f"phi{tic} = {(setup.phi.start + setup.phi.step * tic) * RTD:g}")
    lines += _source_lines(setup)
    lines.append(f"  created a total of {setup.orientations.shape[1]} mosaic domains")
    lines += _summary_lines(setup)
    if det.mask_path is not None:
        lines.append(f"  skipping zero-flagged pixels in {det.mask_path}")
    if noise_seed is not None:
        lines += [
            "",
            "  noise image paramters:",
            f"  seed: {-noise_seed}",
            f"  water droplet size: {bm.water_um * 1e-6:g} m",
        ]
    return lines


def _warnings_before(setup: Setup) -> list[str]:
    """The warnings nanoBragg prints while it fills in defaults, in its order."""
    config = setup.config
    xtal, det, bm = config.crystal, config.detector, config.beam
    lines = []
    beamsize = bm.beamsize_mm / 1000.0
    sizes = [s / 1000.0 if s is not None else 0.0 for s in xtal.xtalsize_mm]
    if beamsize >= 0:
        if beamsize < sizes[1]:
            lines.append(f"WARNING: clipping sample ({sizes[1]:g} m high) with beam ({beamsize:g} m)")
        if beamsize < sizes[2]:
            lines.append(f"WARNING: clipping sample ({sizes[2]:g} m wide) with beam ({beamsize:g} m)")
    odet = resolve_axes(det)["odet"]
    if math.sqrt(sum(v * v for v in odet)) != 1.0:
        lines.append("WARNING: auto-generating odet_vector")
    sensor = setup.sensor
    if det.thick_um > 0.0 and det.absorption_depth_um is None and sensor.thickness > 0.0:
        lines.append(f"WARNING: setting detector attenuation depth to {sensor.mu:g} m")
    spread = xtal.mosaic_spread_deg
    domains = xtal.mosaic_domains if xtal.mosaic_domains is not None else -1
    if domains <= 0:
        if spread is not None and spread > 0.0:
            lines.append("WARNING: finite mosaicity with only one domain! upping to 10 mosaic domains")
    elif spread is None or spread < 0.0:
        lines.append("WARNING: no mosaic spread specified.  setting mosaic_domains = 1")
    elif spread == 0.0:
        lines.append("WARNING: zero mosaic spread specified.  setting mosaic_domains = 1")
    return lines


def _angle(sin_value: float, cos_value: float) -> float:
    """nanoBragg's clamped atan2 of a (sin, cos) pair, in degrees."""
    sin_value = max(-1.0, min(1.0, sin_value))
    if cos_value * cos_value > 1.0:
        cos_value = 1.0
    return math.atan2(sin_value, cos_value) * RTD


def _oddball(title: str, names: tuple[tuple[str, str], ...], pairs: list[tuple[float, float]]) -> list[str]:
    """nanoBragg's warning when a sine or cosine of the cell angles leaves [-1, 1] (inconsistent input)."""
    if all(abs(sin) <= 1.0000001 and abs(cos) <= 1.0000001 for sin, cos in pairs):
        return []
    lines = [f"WARNING: oddball {title}:"]
    for name, (sin, cos) in zip(names, pairs):
        lines += [f"{name[0]} = {sin:.25g}", f"{name[1]} = {cos:.25g}"]
    return lines


def _cell_lines(setup: Setup) -> list[str]:
    real = setup.lattice.real.detach().cpu().to(torch.float64)
    recip = setup.lattice.reciprocal.detach().cpu().to(torch.float64)
    volume = float(setup.lattice.volume.detach())
    lengths = [float(v) for v in real.norm(dim=-1)]
    star = [float(v) for v in recip.norm(dim=-1)]
    a, b, c = real.unbind(0)
    sa, sb, sc = recip.unbind(0)
    cell = [
        (star[0] * volume / lengths[1] / lengths[2], float(b @ c) / lengths[1] / lengths[2]),
        (star[1] * volume / lengths[0] / lengths[2], float(a @ c) / lengths[0] / lengths[2]),
        (star[2] * volume / lengths[0] / lengths[1], float(a @ b) / lengths[0] / lengths[1]),
    ]
    reciprocal = [
        (lengths[0] / volume / star[1] / star[2], float(sb @ sc) / star[1] / star[2]),
        (lengths[1] / volume / star[0] / star[2], float(sa @ sc) / star[0] / star[2]),
        (lengths[2] / volume / star[0] / star[1], float(sa @ sb) / star[0] / star[1]),
    ]
    angles = [_angle(*pair) for pair in cell]
    star_angles = [_angle(*pair) for pair in reciprocal]
    lines = _oddball(
        "cell angles",
        (("sin_alpha", "cos_alpha"), ("sin_beta ", "cos_beta "), ("sin_gamma", "cos_gamma")),
        cell,
    )
    lines += _oddball(
        "reciprocal cell angles",
        (
            ("sin(alpha_star)", "cos(alpha_star)"),
            ("sin(beta_star) ", "cos(beta_star) "),
            ("sin(gamma_star)", "cos(gamma_star)"),
        ),
        reciprocal,
    )
    lines += [
        "Unit Cell: {:g} {:g} {:g} {:g} {:g} {:g}".format(*lengths, *angles),
        "Recp Cell: {:g} {:g} {:g} {:g} {:g} {:g}".format(*star, *star_angles),
        f"volume = {volume:g} A^3",
        "real-space cell vectors (Angstrom):",
        "     {:<10s}  {:<10s}  {:<10s}".format("a", "b", "c"),
    ]
    for axis, name in enumerate("XYZ"):
        lines.append(f"{name}: {float(real[0, axis]):11.8f} {float(real[1, axis]):11.8f} {float(real[2, axis]):11.8f}")
    lines += [
        "reciprocal-space cell vectors (Angstrom^-1):",
        "     {:<10s}  {:<10s}  {:<10s}".format("a_star", "b_star", "c_star"),
    ]
    for axis, name in enumerate("XYZ"):
        lines.append(
            f"{name}: {float(recip[0, axis]):11.8f} {float(recip[1, axis]):11.8f} {float(recip[2, axis]):11.8f}"
        )
    return lines


def _sampling_lines(setup: Setup) -> list[str]:
    """Crystal size, automatic oversampling and the molecular-weight estimate."""
    lengths = [float(v) * 1e-10 for v in setup.lattice.real.detach().norm(dim=-1)]
    cells = [float(v) for v in setup.N.detach()]
    size = [length * n for length, n in zip(lengths, cells)]
    lines = ["crystal is {:g} x {:g} x {:g} microns".format(*(s * 1e6 for s in size))]
    det = setup.config.detector
    wavelength = setup.config.beam.wavelength_A * 1e-10
    reciprocal_pixel = wavelength * _scalar(setup.geometry.distance) / setup.geometry.grid.pixel_size
    recommended = max(1, math.ceil(3.0 * max(size) / reciprocal_pixel)) if reciprocal_pixel > 0 else 1
    if det.oversample is None or det.oversample <= 0:
        lines.append(f"auto-selected {setup.oversample}-fold oversampling")
    if setup.oversample < recommended:
        lines += [
            f"WARNING: maximum dimension of sample is {max(size) * 1e10:g} A",
            f"         but reciprocal pixel size is {reciprocal_pixel * 1e10:g} A",
            "         intensity may vary significantly across a pixel!",
            f"         recommend -oversample {recommended} to work around this",
        ]
    volume = size[0] * size[1] * size[2]
    lines.append(f"approximate MW = {volume * 1.2e6 * AVOGADRO / (cells[0] * cells[1] * cells[2]):g}")
    return lines


def _structure_factor_lines(setup: Setup) -> list[str]:
    sf = setup.config.structure
    if sf.hkl_path is None:
        if sf.dump_path is not None and sf.dump_path.exists():
            return [f"reading Fs from {sf.dump_path}"]
        return []
    lines = [f"counting entries in {sf.hkl_path}"]
    if sf.default_F != 0.0:
        lines += [f"initializing to default_F = {sf.default_F:g}:", "done initializing:"]
    lines.append(f"re-reading {sf.hkl_path}")
    if sf.dump_path is not None:
        lines.append(f"writing dump file for next time: {sf.dump_path}")
    return lines


def _source_lines(setup: Setup) -> list[str]:
    """Divergence and wavelength steps, then every source as nanoBragg lists it."""
    bm = setup.config.beam
    sources = setup.sources
    lines = []
    incident = sources.incident.detach().cpu().to(torch.float64)
    wavelengths = [float(v) for v in sources.wavelength.detach().cpu()]
    if bm.sourcefile is not None:
        from .io.sources import read_sourcefile

        table = read_sourcefile(bm.sourcefile)
        positions = [[float(v) for v in -10.0 * incident[i]] for i in range(sources.count)]
        positions = [
            [p if not math.isnan(t) else q for p, t, q in zip(row[:3], row, pos)]
            for row, pos in zip(table.tolist(), positions)
        ]
        intensities = [1.0 if math.isnan(row[3]) else row[3] for row in table.tolist()]
    else:
        divergence, dispersion = _divergence_and_dispersion(setup)
        lines += [f"divergence deviation: {h:g} {v:g}" for h, v in divergence]
        lines += [f"lambda{tic} = {lam:.15g}" for tic, lam in enumerate(dispersion)]
        positions = [[float(v) for v in -10.0 * incident[i]] for i in range(sources.count)]
        intensities = [1.0 / sources.count] * sources.count
    lines.append(f"  created a total of {sources.count} sources:")
    for position, intensity, lam in zip(positions, intensities, wavelengths):
        lines.append("{:g} {:g} {:g}   {:g} {:g}".format(*position, intensity, lam))
    return lines


def _divergence_and_dispersion(setup: Setup) -> tuple[list[tuple[float, float]], list[float]]:
    """The kept (hdiv, vdiv) angles and the wavelengths, as nanoBragg lists them before the sources."""
    hdiv, vdiv, disp = resolved_beam_sampling(setup.config)
    kept = divergence_grid(hdiv, vdiv, setup.config.beam.round_div)
    (h_range, h_step), (v_range, v_step), (d_range, d_step) = (s.numbers() for s in (hdiv, vdiv, disp))
    angles = [(h_step * h - h_range / 2.0, v_step * v - v_range / 2.0) for h, v in kept]
    lambda0 = setup.config.beam.wavelength_A * 1e-10
    wavelengths = [lambda0 * (1.0 + d_step * tic - d_range / 2.0) for tic in range(disp.steps)]
    return angles, wavelengths


def _summary_lines(setup: Setup) -> list[str]:
    config = setup.config
    det, bm = config.detector, config.beam
    geom, grid, sensor = setup.geometry, setup.geometry.grid, setup.sensor
    phisteps, domains = setup.orientations.shape[:2]
    cells = [float(v) for v in setup.N.detach()]
    lines = [
        f"  {setup.structure.count} initialized hkls (all others ={_scalar(setup.structure.default_F):g})",
        f"  {_SHAPES[setup.shape]} xtal: {cells[0]:.0f}x{cells[1]:.0f}x{cells[2]:.0f} cells",
    ]
    hdiv, vdiv, disp = resolved_beam_sampling(config)
    # nanoBragg counts divergence steps only when it generates the sources (its counter starts at -1)
    divsteps = len(divergence_grid(hdiv, vdiv, bm.round_div)) if bm.sourcefile is None else -1
    lines.append(f"  wave={bm.wavelength_A * 1e-10:g} meters +/- {disp.range * 100:g}% in {disp.steps} steps")
    if bm.nopolar:
        lines.append("  polarization effect disabled")
    else:
        lines.append(f"  Kahn polarization factor: {_scalar(setup.kahn):f}")
    if det.curved:
        lines.append("  curved detector: all pixels same distance from origin")
    if det.point_pixel:
        lines.append("  pixel obliquity effect disabled")
    fdet, sdet, odet, beam = (_vec(v) for v in (geom.fdet, geom.sdet, geom.odet, geom.beam))
    normal = _vec(torch.linalg.cross(geom.beam, geom.polar))
    xmin, xmax, ymin, ymax = setup.roi
    lines += [
        f"  incident fluence: {_scalar(setup.fluence):g} photons/m^2",
        f"  distance={_scalar(geom.distance):g} detsize={grid.detsize_f:g}x{grid.detsize_s:g}"
        f"  pixel={grid.pixel_size:g} meters ({grid.fpixels}x{grid.spixels} pixels)",
        f"  sensor is {sensor.thickness:g} m thick in {sensor.steps} layers with mu= {sensor.mu:g}",
        f"  Xbeam={_scalar(geom.Xbeam):g} Ybeam={_scalar(geom.Ybeam):g}",
        f"  Fbeam={_scalar(geom.Fbeam):g} Sbeam={_scalar(geom.Sbeam):g}",
        f"  Xclose={_scalar(geom.Xclose):g} Yclose={_scalar(geom.Yclose):g}",
        f"  Fclose={_scalar(geom.Fclose):g} Sclose={_scalar(geom.Sclose):g}",
        "  DIRECTION_OF_DETECTOR_X-AXIS= {:g} {:g} {:g}".format(*fdet),
        "  DIRECTION_OF_DETECTOR_Y-AXIS= {:g} {:g} {:g}".format(*sdet),
        "  DIRECTION_OF_DETECTOR_Z-AXIS= {:g} {:g} {:g}".format(*odet),
        "  INCIDENT_BEAM_DIRECTION= {:g} {:g} {:g}".format(*beam),
        "  spindle ROTATION_AXIS= {:g} {:g} {:g}".format(*_vec(geom.spindle)),
        "  POLARIZATION_PLANE_NORMAL= {:g} {:g} {:g}".format(*normal),
        "  dials origin= {:g} {:g} {:g}".format(*_vec(geom.dials_origin_mm)),
        f"  roi: {xmin} < x < {xmax} && {ymin} < y < {ymax}",
        f"  hdivrange={_scalar(hdiv.range):g} hdivstep={_scalar(hdiv.step):g}  radians",
        f"  vdivrange={_scalar(vdiv.range):g} vdivstep={_scalar(vdiv.step):g}  radians",
        f"  {divsteps} divergence steps",
        f"  {setup.sources.count} sources",
        f"  {domains} mosaic domains over mosaic spread of {setup.mosaic_spread_deg:g} degrees",
        f"  {phisteps} phi steps from {setup.phi.start * RTD:g} to {(setup.phi.start + setup.phi.osc) * RTD:g} degrees",
        f"  {setup.oversample}x{setup.oversample} pixel oversample steps"
        + (" +thick" if det.oversample_thick else "")
        + (" +polar" if det.oversample_polar else "")
        + (" +omega" if det.oversample_omega else ""),
    ]
    return lines
