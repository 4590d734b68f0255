"""Structure factors of the unit cell: nearest-reflection lookup and tricubic interpolation.

The table is a dense grid over the HKL file's index ranges (missing reflections hold default_F).
nanoBragg interpolates with a 4x4x4 Lagrange polynomial around the fractional index, and the first
time any evaluation falls within two indices of the table edge it switches interpolation off for
the rest of the run. The renderer carries that run-wide state between pixel chunks, which are
evaluated in nanoBragg's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch


class StructureTable(NamedTuple):
    """A dense F table as tensors only (what compiled kernels take as inputs).

    ``lower``/``upper`` (3,) are the first and last Miller index on each axis, in the table's dtype.
    """

    values: torch.Tensor  # (h_range, k_range, l_range)
    lower: torch.Tensor
    upper: torch.Tensor
    default_F: torch.Tensor  # ()


@dataclass
class StructureFactors:
    """A dense F table with its lower index bounds, or only a default value when there is no table."""

    default_F: torch.Tensor
    table: torch.Tensor | None = None  # (h_range, k_range, l_range)
    lower: tuple[int, int, int] = (0, 0, 0)
    interpolate: bool = False
    count: int = 0  # nanoBragg's "hkls": reflections read (the grid size for an Fdump.bin cache)
    sticky: bool = True  # nanoBragg: the first unsafe stencil turns interpolation off for the rest of the run

    @property
    def upper(self) -> tuple[int, int, int]:
        assert self.table is not None
        h, k, l = (lo + n - 1 for lo, n in zip(self.lower, self.table.shape))
        return h, k, l

    def tensors(self) -> StructureTable:
        """The table and its index bounds as tensors on the table's dtype and device.

        Raises:
            AssertionError: when there is no table (only ``default_F``).
        """
        assert self.table is not None
        dtype, device = self.table.dtype, self.table.device
        return StructureTable(
            self.table,
            torch.tensor(self.lower, dtype=dtype, device=device),
            torch.tensor(self.upper, dtype=dtype, device=device),
            self.default_F,
        )


def nearest_index(hkl: torch.Tensor) -> torch.Tensor:
    """Nearest whole Miller indices, rounded as nanoBragg rounds them: ceil(x - 0.5) (halves go down).

    Args:
        hkl: fractional indices, any shape.

    Returns:
        Whole indices in ``hkl``'s dtype, same shape.

    Example:
        >>> nearest_index(torch.tensor([1.5, -1.5, 2.49]))
        tensor([ 1., -2.,  2.])
    """
    return torch.ceil(hkl - 0.5)


def _bounds(table: StructureTable, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper table indices shaped to broadcast against component-first ``like`` (3, ...)."""
    shape = (3,) + (1,) * (like.dim() - 1)
    return table.lower.view(shape), table.upper.view(shape)


def lookup_nearest(table: StructureTable, hkl0: torch.Tensor) -> torch.Tensor:
    """Structure factors at whole Miller indices; ``default_F`` outside the table.

    Args:
        table: the dense table and its bounds (:meth:`StructureFactors.tensors`).
        hkl0: whole indices, component-first: shape (3, ...), in the table's dtype.

    Returns:
        F, shape ``hkl0.shape[1:]``.

    Example:
        >>> sf = StructureFactors(default_F=torch.tensor(-1.0), table=torch.arange(8.0).reshape(2, 2, 2))
        >>> lookup_nearest(sf.tensors(), torch.tensor([[1.0, 2.0], [0.0, 0.0], [1.0, 0.0]]))
        tensor([ 5., -1.])
    """
    lower, upper = _bounds(table, hkl0)
    inside = ((hkl0 >= lower) & (hkl0 <= upper)).all(0)
    idx = torch.where(inside, hkl0 - lower, torch.zeros_like(hkl0)).long()
    values = table.values[idx[0], idx[1], idx[2]]
    return torch.where(inside, values, table.default_F)


def _lagrange_weights(x: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """Weights (4, ...) of the cubic through nodes floor-1 .. floor+2, evaluated at x."""
    t = x - floor  # position relative to node 1, in [0, 1)
    n0, n1, n2, n3 = t + 1, t, t - 1, t - 2  # distances to nodes floor-1, floor, floor+1, floor+2
    return torch.stack([n1 * n2 * n3 / -6.0, n0 * n2 * n3 / 2.0, n0 * n1 * n3 / -2.0, n0 * n1 * n2 / 6.0])


def interpolation_safe(table: StructureTable, hkl: torch.Tensor) -> torch.Tensor:
    """Where tricubic interpolation is allowed, by nanoBragg's test on the fractional index.

    nanoBragg requires two whole indices of table below and beyond each index (its 4-point
    stencil, tested on the fractional value as C does).

    Args:
        table: the dense table and its bounds.
        hkl: fractional indices, shape (3, ...).

    Returns:
        Booleans, shape ``hkl.shape[1:]``.
    """
    lower, upper = _bounds(table, hkl)
    return ((hkl - 2 >= lower) & (hkl <= upper - 2)).all(0)


def lookup_tricubic(table: StructureTable, hkl: torch.Tensor) -> torch.Tensor:
    """Tricubic (4x4x4 Lagrange) interpolation of the structure factor at fractional indices.

    Convention: nanoBragg's polynomial through the nodes floor(h)-1 .. floor(h)+2 on each axis;
    exact for polynomials of degree 3 in each index, and differentiable in ``hkl``.

    Args:
        table: the dense table and its bounds.
        hkl: fractional indices, component-first: shape (3, ...).

    Returns:
        Interpolated F, shape ``hkl.shape[1:]``. Where the stencil would leave the table (see
        :func:`interpolation_safe`) the nodes are clamped into it, so the result there is finite but
        meaningless: callers select safe points.

    Example:
        >>> idx = torch.arange(-3.0, 4.0)
        >>> h, k, l = torch.meshgrid(idx, idx, idx, indexing="ij")
        >>> sf = StructureFactors(default_F=torch.tensor(0.0), table=h**3 + k * l, lower=(-3, -3, -3))
        >>> lookup_tricubic(sf.tensors(), torch.tensor([[0.5], [0.25], [-1.0]]))  # 0.125 - 0.25
        tensor([-0.1250])
    """
    floor = torch.floor(hkl)
    lower, _ = _bounds(table, hkl)
    base = (floor - lower - 1).long()  # table index of node floor-1, (3, ...)
    weights = _lagrange_weights(hkl, floor)  # (4 nodes, 3 axes, ...)
    last = table.values.shape
    nodes = [[(base[axis] + i).clamp(0, last[axis] - 1) for i in range(4)] for axis in range(3)]
    total = torch.zeros_like(hkl[0])
    for i in range(4):  # the 4x4x4 stencil, unrolled so that each term stays elementwise
        for j in range(4):
            for k in range(4):
                node = table.values[nodes[0][i], nodes[1][j], nodes[2][k]]
                total = total + weights[i, 0] * weights[j, 1] * weights[k, 2] * node
    return total
