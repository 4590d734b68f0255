"""nanoBragg's rule for completing a sampled axis from whichever of range, step and count the user gave.

The spindle (phi), the beam divergence (horizontal and vertical), the spectral dispersion and the
sensor thickness are each sampled at evenly spaced points, and nanoBragg completes the three
numbers of each axis with the same decision tree. The axes differ in three details, which
:class:`AxisRule` names; everything else is :func:`complete_sampling`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sampling:
    """One sampled axis: its full range, the step between points and the number of points.

    Units are the axis's own (radians, a fraction of the wavelength, metres). ``range`` and
    ``step`` may be 0-d tensors when a differentiable parameter sets the range (the count is
    discrete and stays an integer).
    """

    range: float | torch.Tensor
    step: float | torch.Tensor
    steps: int

    def numbers(self) -> tuple[float, float]:
        """Range and step as plain numbers, detached from any graph (for discrete choices and printouts)."""
        return _plain(self.range), _plain(self.step)


def _plain(value: float | torch.Tensor) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


@dataclass(frozen=True)
class AxisRule:
    """How one axis departs from the common rule.

    Attributes:
        default_range: the range when only a count is given (nanoBragg: 1 for divergence and
            dispersion, 1 degree for phi, 0.5 um for the sensor).
        range_alone_divisor: with only a range, two points ``range / divisor`` apart (1: the range's
            two ends; 2: phi and the sensor).
        rotation_steps: phi's variant. A count of 0 means 1; with a range and a count the step is
            ``range / count`` (the count is of rotation increments, not of points), and an explicit
            zero step is kept; nothing collapses to a single point afterwards.
    """

    default_range: float
    range_alone_divisor: int = 1
    rotation_steps: bool = False


DIVERGENCE = AxisRule(default_range=1.0)  # also the spectral dispersion
SPINDLE = AxisRule(default_range=math.radians(1.0), range_alone_divisor=2, rotation_steps=True)
SENSOR = AxisRule(default_range=0.5e-6, range_alone_divisor=2)


def complete_sampling(range_: float | None, step: float | None, count: int | None, rule: AxisRule) -> Sampling:
    """Fill in what the user left out (``None``) of an axis's range, step and count, as nanoBragg does.

    nanoBragg keeps unset values negative; here ``None`` stands for them, and a negative value
    behaves the same. Without a count, the count follows from range and step (at least two points
    when a range is given); without a range, it follows from the step or ``rule.default_range``;
    without a step, it divides the range.

    Args:
        range_: full range of the axis, or None.
        step: distance between neighbouring points, or None.
        count: number of points (phi: rotation steps), or None; 0 chooses automatically.
        rule: the axis's details (:data:`DIVERGENCE`, :data:`SPINDLE`, :data:`SENSOR`).

    Returns:
        The completed :class:`Sampling`. An axis without a positive range and step is one point
        (range and step 0), except for phi, which keeps what the rule gave.

    Example:
        >>> complete_sampling(2e-3, None, 3, DIVERGENCE)  # range and count: points at both ends
        Sampling(range=0.002, step=0.001, steps=3)
        >>> complete_sampling(2.0, None, 4, SPINDLE)  # phi: four increments of range / 4
        Sampling(range=2.0, step=0.5, steps=4)
        >>> complete_sampling(None, None, None, DIVERGENCE)
        Sampling(range=0.0, step=0.0, steps=1)
    """
    rng = range_ if range_ is not None else -1.0
    stp = step if step is not None else -1.0
    n = count if count is not None else -1
    if rule.rotation_steps and n == 0:
        n = 1
    if n <= 0:
        if rng < 0.0:
            if stp <= 0.0:
                return Sampling(0.0, 0.0, 1)
            rng, n = stp, 2
        elif stp <= 0.0:
            n, stp = 2, rng / rule.range_alone_divisor
        else:
            n = math.ceil(rng / stp)
    elif rng < 0.0:
        if stp <= 0.0:
            rng = rule.default_range
            stp = rng / n
        else:
            rng, n = stp, 2
    elif rule.rotation_steps:
        if stp < 0.0:
            stp = rng / n
    elif stp <= 0.0:
        n = max(n, 2)
        stp = rng / (n - 1)
    if not rule.rotation_steps and (rng <= 0.0 or stp <= 0.0 or n <= 0):
        return Sampling(0.0, 0.0, 1)
    return Sampling(rng, stp, n)
