"""nanobrag.sampling: nanoBragg's completion of range, step and count for every sampled axis."""

from __future__ import annotations

import math

import pytest

from nanobrag.sampling import DIVERGENCE, SENSOR, SPINDLE, Sampling, complete_sampling


@pytest.mark.parametrize(
    "given, expected",
    [
        ((None, None, None), Sampling(0.0, 0.0, 1)),  # nothing given: one point
        ((2e-3, None, 3), Sampling(2e-3, 1e-3, 3)),  # range and count: points at both ends
        ((2e-3, None, None), Sampling(2e-3, 2e-3, 2)),  # range alone: its two ends
        ((None, 1e-3, None), Sampling(1e-3, 1e-3, 2)),  # step alone: one step
        ((None, None, 4), Sampling(1.0, 0.25, 4)),  # count alone: nanoBragg's range of 1
        ((3e-3, 1e-3, None), Sampling(3e-3, 1e-3, 3)),  # range and step: the count follows
        ((2e-3, None, 1), Sampling(2e-3, 2e-3, 2)),  # one point cannot span a range: two
        ((0.0, None, 5), Sampling(0.0, 0.0, 1)),  # zero range collapses to one point
    ],
)
def test_divergence_and_dispersion(given, expected):
    assert complete_sampling(*given, DIVERGENCE) == pytest.approx(expected)


@pytest.mark.parametrize(
    "given, expected",
    [
        ((None, None, None), Sampling(0.0, 0.0, 1)),
        ((2.0, None, None), Sampling(2.0, 1.0, 2)),  # an oscillation alone: two steps of half of it
        ((2.0, None, 4), Sampling(2.0, 0.5, 4)),  # count of rotation steps: range / count
        ((None, None, 0), Sampling(math.radians(1.0), math.radians(1.0), 1)),  # 0 steps is 1 step of 1 degree
        ((2.0, 0.0, 4), Sampling(2.0, 0.0, 4)),  # an explicit zero step is kept, and nothing collapses
    ],
)
def test_spindle(given, expected):
    assert complete_sampling(*given, SPINDLE) == pytest.approx(expected)


def test_sensor_layers():
    assert complete_sampling(450e-6, None, None, SENSOR) == pytest.approx(Sampling(450e-6, 225e-6, 2))
    assert complete_sampling(450e-6, None, 4, SENSOR) == pytest.approx(Sampling(450e-6, 150e-6, 4))
    assert complete_sampling(0.0, None, 4, SENSOR) == Sampling(0.0, 0.0, 1)


def test_numbers_detach_tensor_ranges():
    import torch

    scaled = Sampling(torch.tensor(2.0, requires_grad=True) * 1e-3, torch.tensor(1e-3), 3)
    assert scaled.numbers() == pytest.approx((2e-3, 1e-3))
