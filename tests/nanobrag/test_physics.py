"""nanobrag.physics: the lattice transforms (SQUARE, ROUND, GAUSS, TOPHAT)."""

from __future__ import annotations

import math

import pytest
import torch

from nanobrag.config import CrystalShape
from nanobrag.physics import lattice_factor, sinc3, sincg


def test_sincg_limit_and_values(dtype, device, rtol):
    N = torch.tensor(5.0, dtype=dtype, device=device)
    delta = torch.tensor([0.0, 0.1, -0.3, 0.5], dtype=dtype, device=device)
    expected = [5.0] + [math.sin(math.pi * 5 * d) / math.sin(math.pi * d) for d in (0.1, -0.3, 0.5)]
    assert sincg(delta, N).tolist() == pytest.approx(expected, rel=10 * rtol, abs=10 * rtol)


def test_sincg_gradient_finite_at_peak(dtype, device):
    delta = torch.zeros(1, dtype=dtype, device=device, requires_grad=True)
    N = torch.tensor(4.0, dtype=dtype, device=device, requires_grad=True)
    sincg(delta, N).sum().backward()
    assert torch.isfinite(delta.grad).all() and N.grad.item() == pytest.approx(1.0)


def test_sinc3_series_meets_the_exact_form(dtype, device, rtol):
    # On both sides of each dtype's switch between the series and the closed form, and far out.
    x_sq = torch.tensor([0.0, 0.99e-4, 1.01e-4, 0.29, 0.31, 4.0, 30.0], dtype=dtype, device=device)
    x = x_sq.double().sqrt()
    reference = 3.0 * (torch.sin(x) / x - torch.cos(x)) / x_sq.double()  # float64: accurate beyond 1e-4
    values = sinc3(x_sq).double()
    assert float(values[0]) == 1.0
    assert values[1:].tolist() == pytest.approx(reference[1:].tolist(), rel=10 * rtol, abs=10 * rtol)


def test_lattice_factor_at_high_indices_is_accurate_in_float32(device):
    # Reducing h to its distance from the nearest integer keeps float32 exact where sin(pi N h)
    # would have lost every digit: h = 1000.25 with N = 5 in float32 and float64 agree (indices that
    # float32 holds exactly, so that only the arithmetic differs).
    hkl = torch.tensor([[1000.25], [-700.125], [12.0]], dtype=torch.float64, device=device)
    N = torch.tensor([5.0, 5.0, 5.0], dtype=torch.float64, device=device)
    reciprocal = torch.eye(3, dtype=torch.float64, device=device)
    f64 = lattice_factor(CrystalShape.SQUARE, hkl, N, reciprocal, 1.0)
    f32 = lattice_factor(CrystalShape.SQUARE, hkl.float(), N.float(), reciprocal.float(), 1.0)
    assert float(f32) == pytest.approx(float(f64), rel=1e-5)


@pytest.mark.parametrize("shape", list(CrystalShape))
def test_every_shape_peaks_at_N_cubed_on_a_reflection(shape, dtype, device, rtol):
    hkl = torch.tensor([[3.0], [-2.0], [7.0]], dtype=dtype, device=device)
    N = torch.tensor([4.0, 5.0, 6.0], dtype=dtype, device=device)
    reciprocal = torch.eye(3, dtype=dtype, device=device) * 0.01
    value = lattice_factor(shape, hkl, N, reciprocal, 1.0)
    assert value.dtype == dtype
    scale = 0.723601254558268 if shape is CrystalShape.ROUND else 1.0  # nanoBragg scales the sphere
    assert float(value) == pytest.approx(120.0 * scale, rel=10 * rtol)


@pytest.mark.parametrize("N", [(3, 5, 7), (1, 4, 9), (6, 6, 6)])
def test_integrated_intensity_scales_as_the_cell_count(N, dtype, device, rtol):
    # Averaged over a reciprocal unit cell (M >= N samples per axis), |F_latt|^2 of the SQUARE
    # shape is Na Nb Nc: the integrated intensity grows as the crystal volume.
    M = 16
    grid = (torch.arange(M, dtype=dtype, device=device) + 0.25) / M
    hkl = torch.stack(torch.meshgrid(grid + 3, grid - 7, grid + 11, indexing="ij")).reshape(3, -1)
    cells = torch.tensor(N, dtype=dtype, device=device)
    power = lattice_factor(CrystalShape.SQUARE, hkl, cells, torch.eye(3, dtype=dtype, device=device), 1.0) ** 2
    assert float(power.double().mean()) == pytest.approx(float(math.prod(N)), rel=100 * rtol)
