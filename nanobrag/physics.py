"""Lattice transforms: how the crystal's size and shape spread intensity around each Bragg peak.

All functions take fractional Miller indices stacked along the first dimension, hkl[0] = h and so
on (each component contiguous, which keeps the elementwise work cache-friendly), and return the
lattice factor F_latt (its square multiplies |F_cell|^2). N may be a tensor: the factors are smooth
in N so crystal size can be refined.
"""

from __future__ import annotations

import math

import torch

from .config import CrystalShape

# sqrt of the volume ratio between a cube and its inscribed sphere, as nanoBragg scales sinc3.
_ROUND_SCALE = 0.723601254558268
# GAUSS and TOPHAT spots are scaled to the FWHM and volume of SQUARE spots (nanoBragg's constants).
_GAUSS_WIDTH = 0.63
_TOPHAT_RADIUS_SQ = 0.3969
# x^2 below which sinc3 uses its series: float64 as close to nanoBragg's closed form as gradients allow.
_SINC3_SERIES_BELOW_F64 = 1e-4
_SINC3_SERIES_BELOW = 0.3


def sincg(delta: torch.Tensor, N: torch.Tensor) -> torch.Tensor:
    """Grating function sin(pi N delta) / sin(pi delta) of a row of N cells.

    Convention: ``delta = h - nearest integer`` (in [-0.5, 0.5]). For whole N this equals nanoBragg's
    sin(N pi h) / sin(pi h) up to sign (F_latt enters squared), and reducing h first keeps float32
    accurate at high indices. At ``delta == 0`` the value is the limit N, with finite gradients.

    Args:
        delta: distance of the fractional Miller index from the nearest integer, any shape.
        N: number of cells (may be fractional, for refinement), broadcastable against ``delta``.

    Returns:
        The grating function, the broadcast shape of ``delta`` and ``N``.

    Example:
        >>> sincg(torch.tensor([0.0, 0.5]), torch.tensor(5.0))
        tensor([5., 1.])
    """
    x = math.pi * delta
    at_peak = x == 0
    safe_x = torch.where(at_peak, 1.0, x)
    ratio = torch.sin(N * safe_x) / torch.sin(safe_x)
    return torch.where(at_peak, N.to(ratio.dtype), ratio)


def sinc3(x_sq: torch.Tensor) -> torch.Tensor:
    """Transform of a sphere, 3 (sin x - x cos x) / x^3, the ROUND shape's lattice factor.

    Args:
        x_sq: x squared (x in radians of phase), any shape, not negative.

    Returns:
        The transform, shape of ``x_sq``; 1 at 0. Near 0 a series replaces the closed form, which
        keeps gradients finite and float32 accurate.

    Example:
        >>> sinc3(torch.tensor([0.0, 1.0, 4.0]))  # x = 0, 1 and 2
        tensor([1.0000, 0.9035, 0.6531])
    """
    # The closed form subtracts two numbers near 1 and keeps about eps / x^2 of relative error: below
    # x^2 = 1e-4 in float64, but 0.3 in float32, the series (to x^6, error below x^8 / 1.3e6) is better.
    small = x_sq < (_SINC3_SERIES_BELOW_F64 if x_sq.dtype == torch.float64 else _SINC3_SERIES_BELOW)
    safe_sq = torch.where(small, torch.ones_like(x_sq), x_sq)
    x = safe_sq.sqrt()
    exact = 3.0 * (torch.sin(x) / x - torch.cos(x)) / safe_sq
    series = 1.0 - x_sq / 10.0 + x_sq * x_sq / 280.0 - x_sq * x_sq * x_sq / 15120.0
    return torch.where(small, series, exact)


def lattice_factor(
    shape: CrystalShape,
    hkl: torch.Tensor,
    N: torch.Tensor,
    reciprocal: torch.Tensor,
    fudge: torch.Tensor | float,
) -> torch.Tensor:
    """The lattice factor F_latt of a crystal of ``N`` cells at fractional Miller indices ``hkl``.

    Convention: nanoBragg's four crystal shapes. SQUARE is the product of three grating functions
    (:func:`sincg`); ROUND, GAUSS and TOPHAT measure the distance to the nearest reciprocal-lattice
    node with the unrotated reciprocal vectors, as nanoBragg does, and are scaled to SQUARE's peak
    (ROUND by nanoBragg's 0.7236). The intensity is proportional to F_latt^2.

    Args:
        shape: the crystal shape.
        hkl: fractional Miller indices, component-first: shape (3, ...), hkl[0] = h.
        N: cells along a, b, c, shape (3,); fractional values are allowed (smooth in N).
        reciprocal: reciprocal vectors a*, b*, c* as rows, shape (3, 3), 1/Angstrom.
        fudge: nanoBragg's -fudge factor on the spot size (a number or a 0-d tensor).

    Returns:
        F_latt, shape ``hkl.shape[1:]``, on ``hkl``'s dtype and device.

    Example:
        >>> hkl = torch.tensor([[1.0, 1.5], [2.0, 2.0], [3.0, 3.0]])  # a node, and halfway along h
        >>> lattice_factor(CrystalShape.SQUARE, hkl, torch.tensor([4.0, 5.0, 6.0]), torch.eye(3), 1.0)
        tensor([120.,   0.])
    """
    delta = hkl - torch.ceil(hkl - 0.5)
    N_b = N.view(3, *([1] * (hkl.dim() - 1)))
    if shape is CrystalShape.SQUARE:
        f = sincg(delta, N_b)
        return f[0] * f[1] * f[2]
    cells = N[0] * N[1] * N[2]
    if shape is CrystalShape.ROUND:
        radius_sq = (delta * delta * N_b * N_b).sum(0) * fudge
        return cells * _ROUND_SCALE * sinc3(math.pi**2 * radius_sq)
    recip = torch.tensordot(reciprocal, delta, dims=([0], [0]))  # (3 xyz, ...)
    recip_sq = (recip**2).sum(0) * cells * cells
    if shape is CrystalShape.GAUSS:
        return cells * torch.exp(-recip_sq / _GAUSS_WIDTH * fudge)
    return cells * (recip_sq * fudge < _TOPHAT_RADIUS_SQ).to(hkl.dtype)
