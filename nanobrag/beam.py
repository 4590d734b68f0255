"""Incident beam: source points (divergence x dispersion, or a source file), polarization, fluence."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import BeamConfig
from .errors import InputError
from .rotations import rotate_about_axis, unit
from .sampling import Sampling

# Thomson cross section of the electron (m^2), the value nanoBragg uses.
R_E_SQUARED = 7.94079248018965e-30
AVOGADRO = 6.02214179e23
WATER_F = 2.57  # forward-scattering structure factor of water (electrons)
WATER_MW = 18.0


def divergence_grid(h: Sampling, v: Sampling, round_div: bool) -> list[tuple[int, int]]:
    """The (hdiv_tic, vdiv_tic) points of the divergence grid that nanoBragg keeps.

    Args:
        h: horizontal divergence sampling (radians).
        v: vertical divergence sampling (radians).
        round_div: trim the grid to the ellipse inscribed in it (nanoBragg's default; -square_div: False).

    Returns:
        Index pairs in nanoBragg's order (h outer, v inner).

    Example:
        >>> from nanobrag.sampling import DIVERGENCE, complete_sampling
        >>> s = complete_sampling(2e-3, None, 3, DIVERGENCE)
        >>> divergence_grid(s, s, round_div=True)  # the 3x3 grid less its corners
        [(0, 1), (1, 0), (1, 1), (1, 2), (2, 1)]
    """

    def term(tic: int, s: Sampling) -> float:
        full, step = s.numbers()  # a discrete choice, made in double precision as in C
        offset = step * tic - full / 2.0
        numerator = offset * offset - step * step / 4.0 * (1 - s.steps % 2)
        # 0/0 is NaN in C, and a NaN test never trims a point.
        return numerator / (full * full) if full != 0 else math.nan

    kept = []
    for ht in range(h.steps):
        for vt in range(v.steps):
            test = term(ht, h) + term(vt, v)
            if round_div and test * 4.0 > 1.1:
                continue
            kept.append((ht, vt))
    return kept


@dataclass
class Sources:
    """Incident directions (unit vectors along the beam, sources x 3) and wavelengths (metres)."""

    incident: torch.Tensor
    wavelength: torch.Tensor
    weight: torch.Tensor | None = None  # relative weight per source; None: all equal (nanoBragg)

    @property
    def count(self) -> int:
        return self.incident.shape[0]


def generated_sources(
    cfg: BeamConfig,
    beam: torch.Tensor,
    polar: torch.Tensor,
    wavelength: torch.Tensor,
    hdiv: Sampling,
    vdiv: Sampling,
    disp: Sampling,
) -> Sources:
    """Sources of the divergence grid times the wavelength steps, in nanoBragg's order (h, v, then wavelength).

    Args:
        cfg: the beam settings (``round_div``).
        beam: unit vector along the beam, shape (3,); sets dtype and device.
        polar: the polarization axis, shape (3,): divergence turns about it (vertical) and about
            beam x polar (horizontal).
        wavelength: central wavelength in metres, shape ().
        hdiv: horizontal divergence (radians); ``range`` and ``step`` may be tensors (differentiable).
        vdiv: vertical divergence (radians).
        disp: spectral dispersion (a fraction of the wavelength).

    Returns:
        :class:`Sources` with unit incident directions (S, 3) and wavelengths (S,), S = kept grid
        points x wavelength steps.
    """
    tics = divergence_grid(hdiv, vdiv, cfg.round_div)
    dtype, device = beam.dtype, beam.device
    ht = torch.tensor([t[0] for t in tics], dtype=dtype, device=device)
    vt = torch.tensor([t[1] for t in tics], dtype=dtype, device=device)
    h_angle = hdiv.step * ht - hdiv.range / 2.0
    v_angle = vdiv.step * vt - vdiv.range / 2.0
    vertical = unit(torch.linalg.cross(beam, polar))
    toward_source = (-beam).expand(len(tics), 3)
    toward_source = rotate_about_axis(toward_source, polar, v_angle)
    toward_source = rotate_about_axis(toward_source, vertical, h_angle)
    incident = -unit(toward_source)
    dt = torch.arange(disp.steps, dtype=dtype, device=device)
    lambdas = wavelength * (1.0 + disp.step * dt - disp.range / 2.0)
    return Sources(
        incident=incident.repeat_interleave(disp.steps, dim=0),
        wavelength=lambdas.repeat(len(tics)),
    )


def file_sources(
    table: np.ndarray, beam: torch.Tensor, wavelength: torch.Tensor, origin: str | Path = "source file"
) -> Sources:
    """Sources from -sourcefile columns X Y Z I lambda (NaN = missing, filled as nanoBragg does).

    Args:
        table: the file's rows, shape (S, 5): position relative to the crystal (metres; missing: 10 m
            upstream), intensity (read, but as in nanoBragg every source weighs the same), wavelength
            (metres; missing: ``wavelength``).
        beam: unit vector along the beam, shape (3,); sets dtype and device.
        wavelength: the central wavelength in metres, shape ().
        origin: what to name in an error (the file).

    Returns:
        :class:`Sources`: directions from each source towards the crystal, and wavelengths.

    Raises:
        InputError: a source lies at the crystal itself (no direction), naming ``origin`` and the row.
    """
    dtype, device = beam.dtype, beam.device
    xyz = torch.as_tensor(table[:, :3], dtype=dtype, device=device)
    default_pos = (-10.0 * beam).expand_as(xyz)
    xyz = torch.where(torch.isnan(xyz), default_pos, xyz)
    at_crystal = (xyz == 0).all(-1)
    if bool(at_crystal.any()):
        first = int(at_crystal.nonzero()[0, 0]) + 1
        raise InputError(
            f"{origin}: source {first} lies at the crystal (0 0 0 after defaults): it gives no beam direction"
        )
    lam = torch.as_tensor(table[:, 4], dtype=dtype, device=device)
    lam = torch.where(torch.isnan(lam), wavelength.expand_as(lam), lam)
    return Sources(incident=-unit(xyz), wavelength=lam)


def polarization_frame(polar_axis: torch.Tensor, incident: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per source, the unit E-vector direction and its normal, both perpendicular to the beam.

    Args:
        polar_axis: the polarization axis, shape (3,).
        incident: unit incident directions, shape (..., 3).

    Returns:
        ``(e_in, b_in)``, each (..., 3): ``b_in`` along ``polar_axis x incident``, ``e_in`` along
        ``incident x b_in``.
    """
    b_in = unit(torch.linalg.cross(polar_axis.expand_as(incident), incident))
    e_in = unit(torch.linalg.cross(incident, b_in))
    return e_in, b_in


def kahn_factor(kahn: torch.Tensor, cos2t: torch.Tensor, e_out: torch.Tensor, b_out: torch.Tensor) -> torch.Tensor:
    """Kahn polarization factor 0.5 (1 + cos^2 2theta - K cos(2 psi) sin^2 2theta).

    Convention: psi is the azimuth of the diffracted ray about the incident beam, measured from the
    E-vector. cos(2 psi) is formed from the projections directly, which avoids atan2 and stays
    differentiable along the beam (where it is taken as 1).

    Args:
        kahn: the Kahn factor K (-polar), shape () (0: unpolarised, 1: fully polarised).
        cos2t: cos 2theta, any shape.
        e_out: the diffracted unit vector's projection on the E-vector, shape of ``cos2t``.
        b_out: its projection on the E-vector's normal, shape of ``cos2t``.

    Returns:
        The factor, shape of ``cos2t``.

    Example:
        >>> kahn_factor(torch.tensor(0.0), torch.tensor([1.0, 0.0]), torch.zeros(2), torch.tensor([0.0, 1.0]))
        tensor([1.0000, 0.5000])
    """
    cos2t_sq = cos2t * cos2t
    norm = e_out * e_out + b_out * b_out
    on_axis = norm == 0
    cos_2psi = torch.where(
        on_axis,
        torch.ones_like(norm),
        (e_out * e_out - b_out * b_out) / torch.where(on_axis, torch.ones_like(norm), norm),
    )
    return 0.5 * (1.0 + cos2t_sq - kahn * cos_2psi * (1.0 - cos2t_sq))


def polarization_factor(
    kahn: torch.Tensor, incident: torch.Tensor, diffracted: torch.Tensor, polar_axis: torch.Tensor
) -> torch.Tensor:
    """The Kahn polarization factor of each pair of incident and diffracted directions.

    Args:
        kahn: the Kahn factor K, shape ().
        incident: unit incident directions, shape (..., 3) (component-last).
        diffracted: unit diffracted directions, broadcastable against ``incident``.
        polar_axis: the polarization axis, shape (3,).

    Returns:
        The factor, the broadcast shape without the last dimension.
    """
    e_in, b_in = polarization_frame(polar_axis, incident)
    return kahn_factor(kahn, (incident * diffracted).sum(-1), (e_in * diffracted).sum(-1), (b_in * diffracted).sum(-1))


def source_weights(intensities: torch.Tensor) -> torch.Tensor:
    """Relative source weights for corrected -sourcefile runs: I_s / mean(I), so equal intensities give 1.

    A mean that is zero or not finite gives every source weight 1.

    Example:
        >>> source_weights(torch.tensor([1.0, 3.0]))
        tensor([0.5000, 1.5000])
    """
    mean = intensities.mean()
    if not bool(torch.isfinite(mean)) or float(mean) == 0.0:
        return torch.ones_like(intensities)
    return intensities / mean


def resolve_fluence(cfg: BeamConfig) -> float:
    """Photons per m^2: -fluence, or -flux x -exposure / -beamsize^2 when a flux is given.

    Example:
        >>> resolve_fluence(BeamConfig(flux=1e12, exposure_s=2.0, beamsize_mm=0.1))
        2e+20
    """
    beamsize = cfg.beamsize_mm / 1000.0
    if cfg.flux != 0.0 and cfg.exposure_s > 0.0 and beamsize >= 0:
        return cfg.flux * cfg.exposure_s / beamsize / beamsize
    return cfg.fluence


def water_background(fluence: torch.Tensor, water_um: float) -> torch.Tensor:
    """nanoBragg's water background (-water, micrometres of water in the beam), per pixel and steradian.

    Added once per pixel before the r_e^2 * fluence / steps scaling, as in nanoBragg.

    Args:
        fluence: photons per m^2, shape ().
        water_um: thickness of the water in micrometres.

    Returns:
        The background term, shape ().
    """
    size = water_um * 1e-6
    return WATER_F**2 * R_E_SQUARED * fluence * size**3 * 1e6 * AVOGADRO / WATER_MW
