"""Structure factors of the unit cell: nearest-reflection lookup and tricubic interpolation.

The table is a dense grid over the HKL file's index ranges (missing reflections hold default_F).
nanoBragg interpolates with a 4x4x4 Lagrange polynomial around the fractional index, and the first
time any evaluation falls within two indices of the table edge it switches interpolation off for
the rest of the run. :class:`InterpolationSwitch` carries that run-wide state between pixel chunks,
which are evaluated in nanoBragg's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
        return tuple(lo + n - 1 for lo, n in zip(self.lower, self.table.shape))  # type: ignore[return-value]


@dataclass
class InterpolationSwitch:
    """nanoBragg's run-wide interpolation flag; it only ever turns off."""

    on: bool


def nearest_index(hkl: torch.Tensor) -> torch.Tensor:
    """Nearest whole indices as nanoBragg rounds them: ceil(x - 0.5)."""
    return torch.ceil(hkl - 0.5)


def _bounds(sf: StructureFactors, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper table indices shaped to broadcast against component-first ``like`` (3, ...)."""
    shape = (3,) + (1,) * (like.dim() - 1)
    lower = torch.tensor(sf.lower, dtype=like.dtype, device=like.device).view(shape)
    upper = torch.tensor(sf.upper, dtype=like.dtype, device=like.device).view(shape)
    return lower, upper


def lookup_nearest(sf: StructureFactors, hkl0: torch.Tensor) -> torch.Tensor:
    """F at whole indices ``hkl0`` (3, ...); default_F outside the table."""
    if sf.table is None:
        return sf.default_F.expand(hkl0.shape[1:])
    lower, upper = _bounds(sf, hkl0)
    inside = ((hkl0 >= lower) & (hkl0 <= upper)).all(0)
    idx = torch.where(inside, hkl0 - lower, torch.zeros_like(hkl0)).long()
    values = sf.table[idx[0], idx[1], idx[2]]
    return torch.where(inside, values, sf.default_F)


def _lagrange_weights(x: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """Weights (4, ...) of the cubic through nodes floor-1 .. floor+2, evaluated at x."""
    t = x - floor  # position relative to node 1, in [0, 1)
    n0, n1, n2, n3 = t + 1, t, t - 1, t - 2  # distances to nodes floor-1, floor, floor+1, floor+2
    return torch.stack([n1 * n2 * n3 / -6.0, n0 * n2 * n3 / 2.0, n0 * n1 * n3 / -2.0, n0 * n1 * n2 / 6.0])


def interpolation_safe(sf: StructureFactors, hkl: torch.Tensor) -> torch.Tensor:
    """Where the 4-point stencil stays inside the table, by nanoBragg's test on the fractional index."""
    lower, upper = _bounds(sf, hkl)
    return ((hkl - 2 >= lower) & (hkl <= upper - 2)).all(0)


def lookup_tricubic(sf: StructureFactors, hkl: torch.Tensor) -> torch.Tensor:
    """Tricubic (4x4x4 Lagrange) interpolation of F at fractional ``hkl`` (3, n); callers ensure safety."""
    assert sf.table is not None
    floor = torch.floor(hkl)
    lower, _ = _bounds(sf, hkl)
    base = (floor - lower - 1).long()  # table index of node floor-1, (3, n)
    steps = torch.arange(4, device=hkl.device)[:, None]
    hi, ki, li = base[0] + steps, base[1] + steps, base[2] + steps  # (4, n)
    cube = sf.table[hi[:, None, None], ki[None, :, None], li[None, None, :]]  # (4,4,4,n)
    wh, wk, wl = _lagrange_weights(hkl, floor).unbind(1)  # each (4, n)
    return torch.einsum("ijkn,in,jn,kn->n", cube, wh, wk, wl)
