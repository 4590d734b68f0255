"""Crystal lattice: unit cell to real and reciprocal vectors, orientation, spindle and mosaic rotations.

The construction follows nanoBragg step by step (same intermediate vectors, same order), because the
C program's choice of default orientation and its re-derivation of the reciprocal vectors from the
real ones decide where every spot lands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .rotations import axis_rotation, xyz_rotation
from .sampling import SPINDLE, complete_sampling


@dataclass
class Lattice:
    """Real (Angstrom) and reciprocal (1/Angstrom) cell vectors as rows, after misset."""

    real: torch.Tensor  # (3, 3): rows a, b, c
    reciprocal: torch.Tensor  # (3, 3): rows a*, b*, c*
    volume: torch.Tensor  # Angstrom^3


def default_reciprocal_vectors(lengths: torch.Tensor, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reciprocal vectors of a cell in nanoBragg's default orientation, and the cell's volume.

    Convention: a* along x, b* in the x-y plane (nanoBragg's choice before any misset).

    Args:
        lengths: a, b, c in Angstrom, shape (3,).
        angles: alpha, beta, gamma in radians, shape (3,).

    Returns:
        ``(reciprocal, volume)``: rows a*, b*, c* in 1/Angstrom, shape (3, 3), and the volume in
        Angstrom^3, shape ().

    Example:
        >>> right_angles = torch.full((3,), torch.pi / 2)
        >>> reciprocal, volume = default_reciprocal_vectors(torch.tensor([10.0, 20.0, 40.0]), right_angles)
        >>> reciprocal.diagonal(), volume
        (tensor([0.1000, 0.0500, 0.0250]), tensor(8000.))
    """
    a, b, c = lengths.unbind(-1)
    alpha, beta, gamma = angles.unbind(-1)
    half_sum = (alpha + beta + gamma) / 2
    skew = (half_sum.sin() * (half_sum - alpha).sin() * (half_sum - beta).sin() * (half_sum - gamma).sin()).abs()
    volume = 2.0 * a * b * c * skew.sqrt()
    a_star_len = b * c * alpha.sin() / volume
    b_star_len = c * a * beta.sin() / volume
    c_star_len = a * b * gamma.sin() / volume
    cos_alpha_star = (beta.cos() * gamma.cos() - alpha.cos()) / (beta.sin() * gamma.sin())
    cos_beta_star = (gamma.cos() * alpha.cos() - beta.cos()) / (gamma.sin() * alpha.sin())
    cos_gamma_star = (alpha.cos() * beta.cos() - gamma.cos()) / (alpha.sin() * beta.sin())
    sin_gamma_star = c / (volume * a_star_len * b_star_len)
    zero = torch.zeros_like(a)
    a_star = torch.stack([a_star_len, zero, zero])
    b_star = torch.stack([b_star_len * cos_gamma_star, b_star_len * sin_gamma_star, zero])
    c_star = torch.stack(
        [
            c_star_len * cos_beta_star,
            c_star_len * (cos_alpha_star - cos_beta_star * cos_gamma_star) / sin_gamma_star,
            c_star_len * volume / (a * b * c * sin_gamma_star),
        ]
    )
    return torch.stack([a_star, b_star, c_star]), volume


def lattice_from_cell(
    lengths: torch.Tensor, angles: torch.Tensor, misset: torch.Tensor, reciprocal: torch.Tensor | None = None
) -> Lattice:
    """The lattice of a unit cell (-cell), turned by the misset angles, built as nanoBragg builds it.

    Convention: the reciprocal vectors of :func:`default_reciprocal_vectors` (or ``reciprocal``) are
    rotated by :func:`nanobrag.rotations.xyz_rotation` of ``misset``; the real vectors are their
    cross products rescaled so that the user's lengths survive exactly, and the reciprocal vectors
    are then regenerated from them (nanoBragg's order, which decides where spots land).

    Args:
        lengths: a, b, c in Angstrom, shape (3,).
        angles: alpha, beta, gamma in radians, shape (3,).
        misset: rotations about x, y, z in radians, shape (3,).
        reciprocal: rows a*, b*, c* in 1/Angstrom, shape (3, 3), replacing the default orientation
            (a -mat file given together with -cell: the matrix orients, the cell sets lengths and volume).

    Returns:
        The :class:`Lattice` (real rows in Angstrom, reciprocal rows in 1/Angstrom, volume).

    Example:
        >>> cubic = lattice_from_cell(torch.full((3,), 50.0), torch.full((3,), torch.pi / 2), torch.zeros(3))
        >>> cubic.real.diagonal(), cubic.volume
        (tensor([50., 50., 50.]), tensor(125000.))
    """
    default, volume = default_reciprocal_vectors(lengths, angles)
    reciprocal = (default if reciprocal is None else reciprocal) @ xyz_rotation(*misset.unbind(-1)).T
    a_star, b_star, c_star = reciprocal.unbind(0)
    # nanoBragg forces |b* x c*| = a / V (and cyclic) so the user's cell lengths survive exactly.
    crosses = torch.stack(
        [torch.linalg.cross(b_star, c_star), torch.linalg.cross(c_star, a_star), torch.linalg.cross(a_star, b_star)]
    )
    crosses = crosses * (lengths / volume / crosses.norm(dim=-1))[:, None]
    return _close_lattice(crosses * volume, volume)


def lattice_from_mosflm(matrix: torch.Tensor, wavelength_A: torch.Tensor, misset: torch.Tensor) -> Lattice:
    """The lattice of a MOSFLM orientation matrix (-mat), turned by the misset angles.

    Args:
        matrix: the A matrix as the file holds it, shape (3, 3): column j is the j-th reciprocal
            vector times the wavelength (dimensionless).
        wavelength_A: the wavelength that scales it, Angstrom, shape ().
        misset: rotations about x, y, z in radians, shape (3,).

    Returns:
        The :class:`Lattice`; the real vectors are the exact dual of the matrix's reciprocal vectors.
    """
    reciprocal = matrix.T / wavelength_A
    reciprocal = reciprocal @ xyz_rotation(*misset.unbind(-1)).T
    a_star, b_star, c_star = reciprocal.unbind(0)
    volume = 1.0 / torch.dot(a_star, torch.linalg.cross(b_star, c_star))
    real = torch.stack(
        [torch.linalg.cross(b_star, c_star), torch.linalg.cross(c_star, a_star), torch.linalg.cross(a_star, b_star)]
    )
    return _close_lattice(real * volume, volume)


def _close_lattice(real: torch.Tensor, volume: torch.Tensor) -> Lattice:
    """Regenerate the reciprocal vectors from the real ones, as nanoBragg does before simulating."""
    a, b, c = real.unbind(0)
    reciprocal = torch.stack([torch.linalg.cross(b, c), torch.linalg.cross(c, a), torch.linalg.cross(a, b)]) / volume
    return Lattice(real=real, reciprocal=reciprocal, volume=volume)


def c_cell_lengths_m(
    cell: tuple[float, ...] | None,
    matrix: tuple[tuple[float, ...], ...] | None,
    misset_rad: tuple[float, float, float],
    wavelength_A: float,
    rtd: float,
) -> tuple[float, float, float]:
    """|a|, |b|, |c| in metres, computed with nanoBragg's own double arithmetic, operation for operation.

    The crystal size in cells is ceil(size / |a|): when the size is a whole number of cells, the last
    bit of |a| decides between N and N + 1, so this discrete choice repeats C's arithmetic (plain
    floats, same libm) rather than trusting the tensor lattice, which agrees only to rounding.

    Args:
        cell: a, b, c (Angstrom), alpha, beta, gamma (degrees), or None with ``matrix``.
        matrix: the -mat A matrix as in the file, or None.
        misset_rad: misset angles about x, y, z, radians.
        wavelength_A: wavelength scaling the matrix, Angstrom.
        rtd: nanoBragg's degrees per radian, with which it converts the cell's angles.

    Returns:
        The three real-space cell lengths in metres.
    """

    Vector = tuple[float, float, float]

    def cross(x: Vector, y: Vector) -> Vector:
        return (x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0])

    def magnitude(v: Vector) -> float:
        return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])

    def rotate(v: Vector, phix: float, phiy: float, phiz: float) -> Vector:
        x, y, z = v
        if phix != 0:
            y, z = y * math.cos(phix) + z * -math.sin(phix), y * math.sin(phix) + z * math.cos(phix)
        if phiy != 0:
            x, z = x * math.cos(phiy) + y * 0 + z * math.sin(phiy), x * -math.sin(phiy) + y * 0 + z * math.cos(phiy)
        if phiz != 0:
            x, y = x * math.cos(phiz) + y * -math.sin(phiz), x * math.sin(phiz) + y * math.cos(phiz)
        return (x, y, z)

    if cell is not None:
        a, b, c = cell[:3]
        alpha, beta, gamma = (angle / rtd for angle in cell[3:])
        aavg = (alpha + beta + gamma) / 2
        skew = abs(math.sin(aavg) * math.sin(aavg - alpha) * math.sin(aavg - beta) * math.sin(aavg - gamma))
        v_cell = 2.0 * a * b * c * math.sqrt(skew)
        v_star = 1.0 / v_cell
        a_star0 = b * c * math.sin(alpha) * v_star
        b_star0 = c * a * math.sin(beta) * v_star
        c_star0 = a * b * math.sin(gamma) * v_star
        sin_gamma_star = min(c * v_star / a_star0 / b_star0, 1.0)
        cos_alpha_star = (math.cos(beta) * math.cos(gamma) - math.cos(alpha)) / (math.sin(beta) * math.sin(gamma))
        cos_beta_star = (math.cos(gamma) * math.cos(alpha) - math.cos(beta)) / (math.sin(gamma) * math.sin(alpha))
        cos_gamma_star = (math.cos(alpha) * math.cos(beta) - math.cos(gamma)) / (math.sin(alpha) * math.sin(beta))
        cos_alpha_star, cos_beta_star, cos_gamma_star = (
            1.0 if x * x > 1.0 else x for x in (cos_alpha_star, cos_beta_star, cos_gamma_star)
        )
        stars = [
            (a_star0, 0.0, 0.0),
            (b_star0 * cos_gamma_star, b_star0 * sin_gamma_star, 0.0),
            (
                c_star0 * cos_beta_star,
                c_star0 * (cos_alpha_star - cos_beta_star * cos_gamma_star) / sin_gamma_star,
                c_star0 * v_cell / (a * b * c * sin_gamma_star),
            ),
        ]
    if matrix is not None:
        scale = 1e-10 / (wavelength_A / 1e10)
        stars = [
            (matrix[0][column] * scale, matrix[1][column] * scale, matrix[2][column] * scale) for column in range(3)
        ]
    if any(angle != 0 for angle in misset_rad):
        stars = [rotate(star, *misset_rad) for star in stars]
    a_star, b_star, c_star = stars
    crosses = [cross(b_star, c_star), cross(c_star, a_star), cross(a_star, b_star)]
    v_star = a_star[0] * crosses[0][0] + a_star[1] * crosses[0][1] + a_star[2] * crosses[0][2]
    if cell is not None:
        for index, length in enumerate(cell[:3]):
            old = magnitude(crosses[index]) or 1.0
            x, y, z = crosses[index]
            crosses[index] = (length / v_cell / old * x, length / v_cell / old * y, length / v_cell / old * z)
        v_star = 1.0 / v_cell
    v_cell = 1.0 / v_star
    len_a, len_b, len_c = (
        magnitude((1e-10 * (v_cell * x), 1e-10 * (v_cell * y), 1e-10 * (v_cell * z))) for x, y, z in crosses
    )
    return len_a, len_b, len_c


@dataclass(frozen=True)
class PhiSweep:
    """Spindle sampling after nanoBragg's auto-selection (radians)."""

    start: float
    step: float
    steps: int
    osc: float


def resolve_phi_sweep(
    phi0_deg: float, osc_deg: float | None, phistep_deg: float | None, phisteps: int | None
) -> PhiSweep:
    """The spindle sweep after nanoBragg's rule for whichever of range, step and count was left out.

    Args:
        phi0_deg: starting angle (deg).
        osc_deg: oscillation range (deg), or None.
        phistep_deg: step (deg), or None.
        phisteps: number of steps, or None (0 means 1).

    Returns:
        The sweep in radians (:data:`nanobrag.sampling.SPINDLE` completes it).

    Example:
        >>> sweep = resolve_phi_sweep(0.0, 1.0, None, None)  # a range alone: two steps of half of it
        >>> sweep.steps, round(math.degrees(sweep.step), 6)
        (2, 0.5)
    """
    sampling = complete_sampling(
        math.radians(osc_deg) if osc_deg is not None else None,
        math.radians(phistep_deg) if phistep_deg is not None else None,
        phisteps,
        SPINDLE,
    )
    return PhiSweep(
        start=math.radians(phi0_deg), step=float(sampling.step), steps=sampling.steps, osc=float(sampling.range)
    )


def spindle_rotations(sweep: PhiSweep, spindle_axis: torch.Tensor, angles: list[float] | None = None) -> torch.Tensor:
    """Rotations about the spindle for each phi step of ``sweep``, or for the given ``angles``.

    Args:
        sweep: the resolved sweep (radians).
        spindle_axis: unit spindle axis, shape (3,); sets dtype and device.
        angles: explicit angles in radians (nanoBragg's stale-phi quirk), or None for the sweep's.

    Returns:
        Rotation matrices, shape (phisteps, 3, 3).
    """
    if angles is not None:
        phi = torch.tensor(angles, dtype=spindle_axis.dtype, device=spindle_axis.device)
    else:
        tics = torch.arange(sweep.steps, dtype=spindle_axis.dtype, device=spindle_axis.device)
        phi = sweep.start + sweep.step * tics
    return axis_rotation(spindle_axis, phi)


def resolve_mosaic(spread_deg: float | None, domains: int | None) -> tuple[float, int]:
    """nanoBragg's rule for the mosaic spread and the number of domains.

    Args:
        spread_deg: mosaic spread in degrees, or None.
        domains: number of domains, or None (0 chooses).

    Returns:
        ``(spread_deg, domains)``: a spread with no count gets 10 domains; no spread means one
        domain of spread 0.

    Example:
        >>> resolve_mosaic(0.5, None), resolve_mosaic(None, 8)
        ((0.5, 10), (0.0, 1))
    """
    spread = spread_deg if spread_deg is not None else -1.0
    count = domains if domains is not None else -1
    if count <= 0:
        if spread < 0.0:
            return 0.0, 1
        return spread, 1 if spread == 0.0 else 10
    if spread <= 0.0:
        return 0.0, 1
    return spread, count


def mosaic_rotations(axes: torch.Tensor, angle_factors: torch.Tensor, spread_rad: torch.Tensor) -> torch.Tensor:
    """Mosaic rotations: domain d turns by ``spread_rad * angle_factors[d]`` about ``axes[d]``.

    The seeded axes and factors (:func:`nanobrag.rng.mosaic_domain_draws`) stay fixed, so the
    spread is a smooth parameter.

    Args:
        axes: unit axes, shape (domains, 3).
        angle_factors: per-domain factors, shape (domains,).
        spread_rad: the mosaic spread in radians, shape ().

    Returns:
        Rotation matrices, shape (domains, 3, 3).
    """
    return axis_rotation(axes, spread_rad * angle_factors)


def crystal_size_in_cells(
    real_lengths_m: list[float], N: tuple[float, float, float], xtalsize_m: tuple[float | None, ...]
) -> tuple[float, float, float]:
    """Cells along a, b, c: from -xtalsize where given (rounded up), never fewer than one.

    Args:
        real_lengths_m: |a|, |b|, |c| in metres (:func:`c_cell_lengths_m`).
        N: the configured cells along a, b, c.
        xtalsize_m: crystal size along a, b, c in metres, None where not given.

    Returns:
        Cells along a, b, c as floats.

    Example:
        >>> crystal_size_in_cells([5e-9, 5e-9, 5e-9], (1.0, 2.0, 0.0), (1.2e-8, None, None))
        (3.0, 2.0, 1.0)
    """
    cells = []
    for length, n, size in zip(real_lengths_m, N, xtalsize_m):
        if size is not None and size > 0:
            n = math.ceil(size / length)
        cells.append(max(float(n), 1.0))
    return cells[0], cells[1], cells[2]
