"""nanobrag.structure: structure-factor lookups, nearest and tricubic."""

from __future__ import annotations

import pytest
import torch

from nanobrag.structure import StructureFactors, interpolation_safe, lookup_nearest, lookup_tricubic


def cubic_table(dtype: torch.dtype, device: torch.device) -> StructureFactors:
    idx = torch.arange(-6, 7, dtype=dtype, device=device)
    h, k, l = torch.meshgrid(idx, idx, idx, indexing="ij")
    table = 2 + h**3 - 0.5 * h * k * l + 0.25 * l**2 + k
    return StructureFactors(default_F=torch.tensor(-1.0, dtype=dtype, device=device), table=table, lower=(-6, -6, -6))


def test_tricubic_interpolation_is_exact_for_cubics(dtype, device, rtol):
    sf = cubic_table(dtype, device)
    points = torch.tensor([[0.3, -1.7, 2.25], [3.9, 0.0, -3.5]], dtype=dtype, device=device).T
    x, y, z = points.double()
    expected = 2 + x**3 - 0.5 * x * y * z + 0.25 * z**2 + y
    assert lookup_tricubic(sf.tensors(), points).tolist() == pytest.approx(expected.tolist(), rel=100 * rtol)


def test_nearest_lookup_and_the_default_outside(dtype, device):
    sf = cubic_table(dtype, device)
    hkl0 = torch.tensor([[1.0, 7.0], [2.0, 0.0], [-3.0, 0.0]], dtype=dtype, device=device)
    values = lookup_nearest(sf.tensors(), hkl0)
    assert values.tolist() == [2 + 1 - 0.5 * 1 * 2 * -3 + 0.25 * 9 + 2, -1.0]  # (7, 0, 0) lies outside: default_F


def test_interpolation_safe_needs_the_whole_stencil(dtype, device):
    sf = cubic_table(dtype, device)
    hkl = torch.tensor([[3.9, 4.1], [0.0, 0.0], [0.0, 0.0]], dtype=dtype, device=device)
    assert interpolation_safe(sf.tensors(), hkl).tolist() == [True, False]


def test_tricubic_gradient_is_the_derivative_of_the_cubic(dtype, device, rtol):
    sf = cubic_table(dtype, device)
    point = torch.tensor([[0.3], [-1.7], [2.25]], dtype=dtype, device=device, requires_grad=True)
    lookup_tricubic(sf.tensors(), point).sum().backward()
    x, y, z = 0.3, -1.7, 2.25
    expected = [3 * x**2 - 0.5 * y * z, -0.5 * x * z + 1, -0.5 * x * y + 0.5 * z]
    assert point.grad.flatten().tolist() == pytest.approx(expected, rel=100 * rtol)
