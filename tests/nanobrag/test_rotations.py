"""nanobrag.rotations: nanoBragg's rotation conventions as matrices."""

from __future__ import annotations

import math

import pytest
import torch

from nanobrag.rotations import axis_rotation, rotate_about_axis, unit, xyz_rotation


def test_xyz_rotation_turns_x_then_y_then_z(dtype, device, rtol):
    quarter = torch.tensor(math.pi / 2, dtype=dtype, device=device)
    zero = torch.zeros((), dtype=dtype, device=device)
    about_z = xyz_rotation(zero, zero, quarter)
    x = torch.tensor([1.0, 0.0, 0.0], dtype=dtype, device=device)
    assert (about_z @ x).tolist() == pytest.approx([0.0, 1.0, 0.0], abs=10 * rtol)
    both = xyz_rotation(quarter, zero, quarter)  # x first: y -> z; then z leaves z alone
    y = torch.tensor([0.0, 1.0, 0.0], dtype=dtype, device=device)
    assert (both @ y).tolist() == pytest.approx([0.0, 0.0, 1.0], abs=10 * rtol)


def test_axis_rotation_agrees_with_rotating_vectors(dtype, device, rtol):
    axis = unit(torch.tensor([1.0, 2.0, 2.0], dtype=dtype, device=device))
    angles = torch.tensor([0.1, -0.7, 2.0], dtype=dtype, device=device)
    v = torch.tensor([[0.3, -1.0, 0.5]], dtype=dtype, device=device).expand(3, 3)
    by_matrix = (axis_rotation(axis, angles) @ v[..., None])[..., 0]
    assert torch.allclose(by_matrix, rotate_about_axis(v, axis, angles), atol=10 * rtol)
    eye = torch.eye(3, dtype=dtype, device=device)
    matrices = axis_rotation(axis, angles)
    assert torch.allclose(matrices @ matrices.transpose(-1, -2), eye.expand(3, 3, 3), atol=10 * rtol)


def test_unit_keeps_zero_vectors(dtype, device):
    vectors = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]], dtype=dtype, device=device)
    assert unit(vectors).tolist() == [[0.0, 0.0, 0.0], [0.6, 0.0, 0.8]] or torch.allclose(
        unit(vectors), torch.tensor([[0.0, 0.0, 0.0], [0.6, 0.0, 0.8]], dtype=dtype, device=device)
    )
