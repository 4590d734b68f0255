"""nanoBragg's generators: the golden noise image, generator state, distributions and rotations."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from nanobrag.io.smv import read_smv
from nanobrag.noise import noise_image
from nanobrag.rng import (
    GeneratorStatics,
    SeededStream,
    f32,
    gammln,
    mosaic_domain_draws,
    mosaic_rotation_umat,
    random_misset_angles,
    umat2misset,
)

from .golden_cases import float_image, log_values

CASE = "smv_int_noise"


@pytest.mark.golden
def test_noise_image_matches_nanobragg_pixel_for_pixel(shared_dir):
    pixels, photons, overloads = noise_image(float_image(shared_dir, CASE), seed=7, adc_offset=40.0)
    _, reference = read_smv(shared_dir / "golden" / f"{CASE}.noise.img")
    np.testing.assert_array_equal(pixels, reference)
    logged_photons, logged_overloads = log_values(shared_dir, CASE, r"(\d+) photons on noise image \((\d+) overloads\)")
    assert (f"{photons:.0f}", overloads) == (logged_photons, int(logged_overloads))


@pytest.mark.golden
def test_other_seed_gives_other_noise_with_the_same_mean(shared_dir):
    image = float_image(shared_dir, CASE)
    pixels, photons, _ = noise_image(image, seed=8, adc_offset=40.0)
    _, reference = read_smv(shared_dir / "golden" / f"{CASE}.noise.img")
    assert (pixels != reference).mean() > 0.3
    expected = float(image.astype(np.float64).sum())
    assert abs(photons - expected) < 5 * math.sqrt(expected)  # Poisson: variance = mean
    assert photons == float((pixels.astype(np.int64) - 40).sum())


def test_noise_roi_offset_and_overloads():
    image = np.full((3, 4), 5.0, dtype=np.float32)
    image[1, 1] = 1e7
    pixels, photons, overloads = noise_image(image, seed=1, adc_offset=100.0, roi=(1, 2, 0, 1))
    assert overloads == 1 and pixels[1, 1] == 65535
    assert (pixels[2] == 0).all() and (pixels[:, [0, 3]] == 0).all()
    assert (pixels[:2, 1:3] >= 100).all() and photons > 1e7 - 5e4


def test_ran1_values_are_float32_in_open_unit_interval():
    stream = SeededStream.from_user_seed(5)
    values = [stream.ran1() for _ in range(20000)]
    assert all(0.0 < v < 1.0 and f32(v) == v for v in values)
    assert abs(np.mean(values) - 0.5) < 0.01


def test_negative_seed_reinitialises_the_shared_table():
    statics = GeneratorStatics()
    first = SeededStream(-3, statics)
    drawn = [first.ran1() for _ in range(50)]
    again = SeededStream(-3, statics)  # negative: refills the shared table, so the sequence restarts
    assert [again.ran1() for _ in range(50)] == drawn
    assert [SeededStream(-3).ran1() for _ in range(1)] == drawn[:1]


def test_positive_seed_continues_with_the_shared_table():
    statics = GeneratorStatics()
    stream = SeededStream(-11, statics)
    for _ in range(7):
        stream.ran1()
    twin = copy.deepcopy(stream)
    follower = SeededStream(stream.idum, statics)  # a positive seed does not touch the table
    assert [follower.ran1() for _ in range(20)] == [twin.ran1() for _ in range(20)]


def test_positive_seed_on_a_fresh_table_starts_from_one():
    # C: "don't want idum=0" -- the first call with an uninitialised table and idum > 0 uses idum = 1.
    assert SeededStream(12345).ran1() == SeededStream(-1).ran1() == SeededStream(0).ran1()


def test_gaussdev_keeps_its_spare_deviate():
    stream = SeededStream.from_user_seed(2)
    values = []
    for _ in range(5000):
        values.append(stream.gaussdev())
        idum = stream.idum
        values.append(stream.gaussdev())
        assert stream.idum == idum  # the second of each pair is the cached spare
    assert abs(np.mean(values)) < 0.05 and abs(np.std(values) - 1.0) < 0.05
    assert all(f32(v) == v for v in values)


@pytest.mark.parametrize("mean", [0.0, 0.3, 3.0, 11.9, 12.0, 40.0, 700.0])
def test_poidev_moments(mean):
    stream = SeededStream.from_user_seed(99)
    draws = np.array([stream.poidev(f32(mean)) for _ in range(4000)])
    assert (draws == np.floor(draws)).all() and (draws >= 0).all()
    tolerance = 5 * math.sqrt(max(mean, 1e-3) / len(draws))
    assert abs(draws.mean() - mean) < tolerance
    if mean > 0:
        assert abs(draws.var() / mean - 1.0) < 0.15


def test_poidev_of_huge_mean_is_gaussian():
    stream = SeededStream.from_user_seed(4)
    draws = np.array([stream.poidev(4.0e6) for _ in range(2000)])
    assert abs(draws.mean() - 4.0e6) < 5 * 2000 / math.sqrt(len(draws))
    assert abs(draws.std() / 2000.0 - 1.0) < 0.1


def test_poidev_caches_the_last_mean():
    statics = GeneratorStatics()
    SeededStream(-1, statics).poidev(20.0)
    assert statics.poisson_mean == 20.0 and statics.poisson_alxm == f32(math.log(20.0))


@pytest.mark.parametrize("x", [0.5, 1.0, 2.5, 13.0, 150.0, 1.0e4])
def test_gammln_is_lgamma_to_float_precision(x):
    assert gammln(x) == pytest.approx(math.lgamma(x), rel=1e-6, abs=1e-6)


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return math.cos(angle) * np.eye(3) + (1 - math.cos(angle)) * np.outer(axis, axis) + math.sin(angle) * cross


def test_reparameterised_mosaic_draws_reproduce_the_c_matrices():
    spread = math.radians(1.0)
    axes, factors = mosaic_domain_draws(8, seed=42)
    stream = SeededStream.from_user_seed(42)
    umats = [mosaic_rotation_umat(spread, stream) for _ in range(8)]
    assert factors[0] == 0.0  # domain 0 is forced to the identity ...
    assert not np.allclose(umats[0], np.eye(3))  # ... although its draws were real and consumed
    np.testing.assert_allclose(np.linalg.norm(axes, axis=1), 1.0, rtol=1e-12)
    assert ((factors[1:] > 0) & (factors[1:] <= 1)).all()
    for d in range(1, 8):
        np.testing.assert_allclose(_axis_rotation(axes[d], spread * factors[d]), umats[d], atol=1e-9)
        np.testing.assert_allclose(umats[d] @ umats[d].T, np.eye(3), atol=1e-12)


def test_mosaic_draws_depend_on_the_seed_only():
    a1, f1 = mosaic_domain_draws(4, seed=7)
    a2, f2 = mosaic_domain_draws(4, seed=7)
    a3, _ = mosaic_domain_draws(4, seed=8)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(f1, f2)
    assert not np.allclose(a1, a3)


def _misset_matrix(rotx: float, roty: float, rotz: float) -> np.ndarray:
    """nanoBragg's rotate(): about x, then y, then z."""
    cx, sx, cy, sy, cz, sz = (
        math.cos(rotx),
        math.sin(rotx),
        math.cos(roty),
        math.sin(roty),
        math.cos(rotz),
        math.sin(rotz),
    )
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.mark.parametrize(
    "angles", [(0.1, 0.2, 0.3), (-1.0, 0.5, 2.5), (math.radians(10), math.radians(20), math.radians(30))]
)
def test_umat2misset_inverts_nanobraggs_rotation_order(angles):
    assert umat2misset(_misset_matrix(*angles)) == pytest.approx(angles, abs=1e-12)


def test_umat2misset_repairs_an_empty_row():
    matrix = _misset_matrix(0.3, -0.2, 0.1)
    broken = matrix.copy()
    broken[2] = 0.0  # nanoBragg rebuilds it from the cross product of the other two rows
    assert umat2misset(broken) == pytest.approx((0.3, -0.2, 0.1), abs=1e-12)


def test_random_misset_angles_reproduce_the_drawn_orientation():
    angles = random_misset_angles(seed=5)
    umat = mosaic_rotation_umat(90.0, SeededStream.from_user_seed(5))
    np.testing.assert_allclose(_misset_matrix(*angles), umat, atol=1e-12)
    assert random_misset_angles(seed=5) == angles != random_misset_angles(seed=6)
