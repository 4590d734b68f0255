"""nanobrag.crystal: the lattice of a cell or a MOSFLM matrix, spindle and mosaic rotations, the phi sweep."""

from __future__ import annotations

import math

import pytest
import torch

from nanobrag.crystal import lattice_from_cell, lattice_from_mosflm, mosaic_rotations, resolve_mosaic, resolve_phi_sweep

from .c_log import read_c_log

TRICLINIC = (70.0, 80.0, 90.0, 75.0, 85.0, 95.0)
MISSET_DEG = (10.0, 20.0, 30.0)


def triclinic_lattice(dtype: torch.dtype, device: torch.device):
    def tensor(values: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=device)

    return lattice_from_cell(
        tensor(TRICLINIC[:3]), torch.deg2rad(tensor(TRICLINIC[3:])), torch.deg2rad(tensor(MISSET_DEG))
    )


def test_triclinic_cell_vectors_match_the_c_printout(shared_dir, dtype, device):
    log = read_c_log(shared_dir / "golden" / "triclinic_misset.log")
    lattice = triclinic_lattice(dtype, device)
    assert lattice.real.dtype == dtype and lattice.real.device.type == device.type
    # The log prints 6-7 significant digits; float32 carries as many.
    assert lattice.real.flatten().tolist() == pytest.approx([v for row in log["real"] for v in row], abs=2e-5)
    assert lattice.reciprocal.flatten().tolist() == pytest.approx(
        [v for row in log["reciprocal"] for v in row], abs=2e-8
    )


def test_cell_lengths_survive_and_reciprocal_vectors_are_orthogonal(dtype, device, rtol):
    # nanoBragg rescales the real vectors to the user's lengths with the volume of its formula, which
    # differs from det(real) in the last digits of a triclinic cell: a.a* = b.b* = c.c* = 1.0002 here,
    # as in C. The lengths and the orthogonality a.b* = 0 hold exactly.
    lattice = triclinic_lattice(dtype, device)
    assert lattice.real.norm(dim=1).tolist() == pytest.approx(TRICLINIC[:3], rel=10 * rtol)
    products = lattice.real @ lattice.reciprocal.T
    off_diagonal = products - torch.diag(torch.diagonal(products))
    assert float(off_diagonal.abs().max()) < 10 * rtol
    assert torch.allclose(torch.diagonal(products), products[0, 0].expand(3), rtol=10 * rtol)


def test_mosflm_matrix_gives_the_same_lattice(dtype, device, rtol):
    # The reciprocal rows of the cell, times the wavelength, as a -mat file holds them (one column each).
    cell = triclinic_lattice(torch.float64, torch.device("cpu"))
    wavelength = 1.3
    matrix = (cell.reciprocal.T * wavelength).to(dtype=dtype, device=device)
    no_misset = torch.zeros(3, dtype=dtype, device=device)
    lattice = lattice_from_mosflm(matrix, torch.tensor(wavelength, dtype=dtype, device=device), no_misset)
    assert lattice.reciprocal.dtype == dtype
    assert torch.allclose(lattice.reciprocal.cpu().double(), cell.reciprocal, rtol=100 * rtol, atol=0)


def test_cell_gradient_reaches_every_vector(dtype, device):
    lengths = torch.tensor(TRICLINIC[:3], dtype=dtype, device=device, requires_grad=True)
    angles = torch.deg2rad(torch.tensor(TRICLINIC[3:], dtype=dtype, device=device))
    lattice = lattice_from_cell(lengths, angles, torch.zeros(3, dtype=dtype, device=device))
    (grad,) = torch.autograd.grad(lattice.reciprocal.sum(), lengths)
    assert torch.isfinite(grad).all() and (grad != 0).all()


def test_mosaic_rotations_are_rotations(dtype, device, rtol):
    axes = torch.nn.functional.normalize(torch.randn(5, 3, generator=torch.Generator().manual_seed(3)), dim=1)
    factors = torch.linspace(-1.0, 1.0, 5)
    rotations = mosaic_rotations(axes.to(dtype=dtype, device=device), factors.to(dtype=dtype, device=device),
                                 torch.tensor(0.01, dtype=dtype, device=device))  # fmt: skip
    eye = torch.eye(3, dtype=dtype, device=device).expand(5, 3, 3)
    assert torch.allclose(rotations @ rotations.transpose(1, 2), eye, atol=10 * rtol)


def test_phi_and_mosaic_rules():
    assert resolve_phi_sweep(0, None, None, None).steps == 1
    sweep = resolve_phi_sweep(10, 2, None, 4)
    assert (sweep.steps, sweep.step, sweep.start) == (4, pytest.approx(math.radians(0.5)), math.radians(10))
    sweep = resolve_phi_sweep(0, 1, None, None)  # osc alone: two steps of half the range
    assert (sweep.steps, sweep.step) == (2, pytest.approx(math.radians(0.5)))
    assert resolve_mosaic(None, None) == (0.0, 1)
    assert resolve_mosaic(0.5, None) == (0.5, 10)
    assert resolve_mosaic(None, 8) == (0.0, 1)
