"""Rotation matrices in nanoBragg's conventions, batched and differentiable.

nanoBragg rotates vectors three ways: about x, then y, then z (``rotate``); about a unit axis
(``rotate_axis``, Rodrigues); and by a stored unitary matrix (``rotate_umat``). Here each is a
3x3 matrix acting on column vectors, so compositions are plain matrix products.
"""

from __future__ import annotations

import torch


def xyz_rotation(rx: torch.Tensor, ry: torch.Tensor, rz: torch.Tensor) -> torch.Tensor:
    """Matrix of nanoBragg's ``rotate``: about x by rx, then y by ry, then z by rz (radians)."""
    rx, ry, rz = torch.broadcast_tensors(rx, ry, rz)
    one, zero = torch.ones_like(rx), torch.zeros_like(rx)
    cx, sx, cy, sy, cz, sz = rx.cos(), rx.sin(), ry.cos(), ry.sin(), rz.cos(), rz.sin()
    r_x = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).unflatten(-1, (3, 3))
    r_y = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).unflatten(-1, (3, 3))
    r_z = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).unflatten(-1, (3, 3))
    return r_z @ r_y @ r_x


def axis_rotation(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues matrix for a right-handed rotation by ``angle`` about unit ``axis``.

    ``axis`` is (..., 3) and ``angle`` broadcasts against its batch shape; returns (..., 3, 3).
    """
    angle = torch.as_tensor(angle, dtype=axis.dtype, device=axis.device)
    # broadcast_tensors, not torch.broadcast_shapes: the latter imports sympy (seconds of startup).
    axis_x, angle = torch.broadcast_tensors(axis[..., 0], angle)
    axis = axis.expand(*axis_x.shape, 3)
    c, s = angle.cos()[..., None, None], angle.sin()[..., None, None]
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).unflatten(-1, (3, 3))
    outer = axis[..., :, None] * axis[..., None, :]
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device)
    return c * eye + s * cross + (1 - c) * outer


def rotate_about_axis(v: torch.Tensor, axis: torch.Tensor, angle: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Rotate vectors ``v`` about unit ``axis`` (3,) by per-vector ``angle``.

    The components of ``v`` lie along ``dim`` (last by default; 0 for component-first layouts);
    ``angle`` has the shape of ``v`` without that dimension.
    """
    shape = [1] * v.dim()
    shape[dim] = 3
    axis_b = axis.view(shape)
    cos, sin = angle.cos().unsqueeze(dim), angle.sin().unsqueeze(dim)
    along = (v * axis_b).sum(dim, keepdim=True) * axis_b
    return along * (1 - cos) + v * cos + torch.linalg.cross(axis_b.expand_as(v), v, dim=dim) * sin


def unit(v: torch.Tensor) -> torch.Tensor:
    """Unit vector along the last axis; a zero vector stays zero, as nanoBragg's ``unitize``."""
    norm = v.norm(dim=-1, keepdim=True)
    return v / torch.where(norm == 0, torch.ones_like(norm), norm)
