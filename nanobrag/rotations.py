"""Rotation matrices in nanoBragg's conventions, batched and differentiable.

nanoBragg rotates vectors three ways: about x, then y, then z (``rotate``); about a unit axis
(``rotate_axis``, Rodrigues); and by a stored unitary matrix (``rotate_umat``). Here each is a
3x3 matrix acting on column vectors, so compositions are plain matrix products.
"""

from __future__ import annotations

import torch


def xyz_rotation(rx: torch.Tensor, ry: torch.Tensor, rz: torch.Tensor) -> torch.Tensor:
    """Matrix of nanoBragg's ``rotate``: about x by ``rx``, then about y by ``ry``, then about z by ``rz``.

    Convention: right-handed rotations of column vectors in the lab frame (extrinsic x-y-z), so the
    matrix is ``R_z @ R_y @ R_x``; nanoBragg uses it for -misset and the detector's -rotx/-roty/-rotz.

    Args:
        rx: angle about x, radians, any shape.
        ry: angle about y, radians, broadcastable against ``rx``.
        rz: angle about z, radians, broadcastable against ``rx``.

    Returns:
        Rotation matrices of shape (..., 3, 3), the broadcast shape of the angles followed by (3, 3),
        on the angles' dtype and device.

    Example:
        >>> quarter, zero = torch.tensor(torch.pi / 2), torch.tensor(0.0)
        >>> (xyz_rotation(zero, zero, quarter) @ torch.tensor([1.0, 0.0, 0.0])).round(decimals=6)
        tensor([0., 1., 0.])
    """
    rx, ry, rz = torch.broadcast_tensors(rx, ry, rz)
    one, zero = torch.ones_like(rx), torch.zeros_like(rx)
    cx, sx, cy, sy, cz, sz = rx.cos(), rx.sin(), ry.cos(), ry.sin(), rz.cos(), rz.sin()
    r_x = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).unflatten(-1, (3, 3))
    r_y = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).unflatten(-1, (3, 3))
    r_z = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).unflatten(-1, (3, 3))
    return r_z @ r_y @ r_x


def axis_rotation(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues matrix of a right-handed rotation by ``angle`` about the unit vector ``axis``.

    Convention: nanoBragg's ``rotate_axis`` (the spindle, mosaic domains), as a matrix acting on
    column vectors.

    Args:
        axis: unit rotation axes, shape (..., 3).
        angle: angles in radians, a tensor or number broadcastable against the batch shape of ``axis``.

    Returns:
        Rotation matrices of shape (..., 3, 3) on ``axis``'s dtype and device.

    Example:
        >>> z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        >>> axis_rotation(z, torch.tensor([0.0, torch.pi], dtype=torch.float64)).diagonal(dim1=-2, dim2=-1)
        tensor([[ 1.,  1.,  1.],
                [-1., -1.,  1.]], dtype=torch.float64)
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
    """Rotate each vector of ``v`` about one unit ``axis`` by its own ``angle`` (Rodrigues' formula).

    Convention: right-handed, as nanoBragg's ``rotate_axis``; no matrix is formed, which keeps
    component-first layouts, (3, ...), contiguous.

    Args:
        v: vectors with their three components along ``dim``.
        axis: the unit axis, shape (3,).
        angle: angles in radians, the shape of ``v`` without ``dim``.
        dim: the component dimension of ``v`` (last by default; 0 for component-first tensors).

    Returns:
        The rotated vectors, shape of ``v``.

    Example:
        >>> v = torch.tensor([[1.0, 0.0, 0.0]])
        >>> rotate_about_axis(v, torch.tensor([0.0, 0.0, 1.0]), torch.tensor([torch.pi / 2])).round(decimals=6)
        tensor([[0., 1., 0.]])
    """
    shape = [1] * v.dim()
    shape[dim] = 3
    axis_b = axis.view(shape)
    cos, sin = angle.cos().unsqueeze(dim), angle.sin().unsqueeze(dim)
    along = (v * axis_b).sum(dim, keepdim=True) * axis_b
    return along * (1 - cos) + v * cos + torch.linalg.cross(axis_b.expand_as(v), v, dim=dim) * sin


def unit(v: torch.Tensor) -> torch.Tensor:
    """Unit vectors along the last dimension; a zero vector stays zero, as nanoBragg's ``unitize``.

    Args:
        v: vectors, shape (..., 3) (any length of the last dimension works).

    Returns:
        ``v / |v|``, shape of ``v``; zero where ``|v| = 0`` (with a finite gradient there).

    Example:
        >>> unit(torch.tensor([[3.0, 0.0, 4.0], [0.0, 0.0, 0.0]]))
        tensor([[0.6000, 0.0000, 0.8000],
                [0.0000, 0.0000, 0.0000]])
    """
    norm = v.norm(dim=-1, keepdim=True)
    return v / torch.where(norm == 0, torch.ones_like(norm), norm)
