"""nanobrag.detector: conventions, pivots, the detector frame, pixel positions and solid angles."""

from __future__ import annotations

import pytest
import torch

from nanobrag.config import Convention, DetectorConfig
from nanobrag.detector import (
    capture_fraction,
    detector_frame,
    detector_geometry,
    pixel_positions,
    resolve_pixel_grid,
    resolve_sensor,
    solid_angle,
)

from .c_log import read_c_log


def geometry(cfg: DetectorConfig, dtype: torch.dtype, device: torch.device, **angles_deg: float):
    def scalar(value: float) -> torch.Tensor:
        return torch.tensor(value, dtype=dtype, device=device)

    rotations = torch.deg2rad(torch.stack([scalar(angles_deg.get(axis, 0.0)) for axis in ("rotx", "roty", "rotz")]))
    return detector_geometry(
        cfg,
        distance=scalar(cfg.distance_mm / 1000.0),
        beam_x=None,
        beam_y=None,
        rotations=rotations,
        twotheta=torch.deg2rad(scalar(angles_deg.get("twotheta", 0.0))),
    )


def test_rotated_detector_matches_the_c_printout(shared_dir, dtype, device, rtol):
    log = read_c_log(shared_dir / "golden" / "detector_rot.log")
    cfg = DetectorConfig(distance_mm=100, fpixels=256, spixels=256, pixel_mm=0.4)
    geom = geometry(cfg, dtype, device, rotx=5, roty=3, rotz=2, twotheta=15)
    assert geom.fdet.dtype == dtype and geom.pix0.device.type == device.type
    assert geom.fdet.tolist() == pytest.approx(log["fdet"], abs=1e-6)
    assert geom.sdet.tolist() == pytest.approx(log["sdet"], abs=1e-6)
    assert geom.odet.tolist() == pytest.approx(log["odet"], abs=1e-6)
    for key in ("Fbeam", "Sbeam", "Fclose", "Sclose", "distance"):
        assert float(getattr(geom, key)) == pytest.approx(log[key], rel=max(rtol, 1e-5)), key
    assert geom.dials_origin_mm.tolist() == pytest.approx(log["dials_origin"], rel=1e-5)


def test_xds_origin_matches_the_c_printout(shared_dir, dtype, device):
    log = read_c_log(shared_dir / "golden" / "xds_beam.log")
    cfg = DetectorConfig(distance_mm=100, fpixels=256, spixels=256, pixel_mm=0.4, convention="xds", ORGX=100, ORGY=140)
    geom = geometry(cfg, dtype, device)
    assert [float(geom.Fclose), float(geom.Sclose)] == pytest.approx([log["Fclose"], log["Sclose"]], rel=1e-6)
    assert geom.dials_origin_mm.tolist() == pytest.approx(log["dials_origin"], rel=1e-6)
    assert float(geom.ORGX) == pytest.approx(100.0) and float(geom.ORGY) == pytest.approx(140.0)


def test_detector_edge_on_to_the_beam_stays_finite(dtype, device):
    # The detector normal perpendicular to the beam: nanoBragg's beam/normal ratio is 0 and it adds
    # the smallest double. That guard must be the smallest number of the tensors' own dtype: in
    # float32 a float64 tiny rounds to 0 and the distance becomes 0/0.
    cfg = DetectorConfig(
        convention=Convention.CUSTOM,
        beam_vector=(1.0, 0.0, 0.0),
        fdet_vector=(0.0, 0.0, 1.0),
        sdet_vector=(1.0, 0.0, 0.0),
        odet_vector=(0.0, 1.0, 0.0),
        distance_mm=100,
        fpixels=8,
        spixels=8,
    )
    geom = geometry(cfg, dtype, device)
    for name in ("pix0", "distance", "close_distance", "Fbeam", "Sbeam", "Fclose", "Sclose"):
        assert torch.isfinite(getattr(geom, name)).all(), name


def test_pixel_positions_and_solid_angle(dtype, device, rtol):
    cfg = DetectorConfig(distance_mm=100, fpixels=4, spixels=3, pixel_mm=0.5)
    frame = detector_frame(geometry(cfg, dtype, device))
    slow = torch.tensor([0, 2], dtype=torch.int32, device=device)
    fast = torch.tensor([0, 3], dtype=torch.int32, device=device)
    sub_index = torch.arange(2, dtype=torch.int32, device=device)
    depths = torch.zeros(1, dtype=dtype, device=device)
    positions = pixel_positions(frame, slow, fast, sub_index, depths, curved=False)
    assert positions.shape == (3, 1, 4, 2) and positions.dtype == dtype
    # Neighbouring sub-pixels of one pixel lie a quarter pixel apart along fast (sub-pixel 1 is (0, 1)).
    step = (positions[:, 0, 1, 0] - positions[:, 0, 0, 0]).norm()
    assert float(step) == pytest.approx(0.25e-3, rel=max(rtol, 1e-6))
    airpath = positions.norm(dim=0)
    omega = solid_angle(frame, airpath, point_pixel=False)
    expected = (0.5e-3) ** 2 / airpath**2 * frame.close_distance / airpath
    assert torch.allclose(omega, expected, rtol=rtol)


def test_capture_fractions_of_all_layers_add_up(dtype, device, rtol):
    parallax = torch.tensor([1.0, 0.6], dtype=dtype, device=device)
    layers = torch.arange(4, dtype=dtype, device=device)[:, None]
    fractions = capture_fraction(parallax, layers, 0.3)
    total = 1.0 - torch.exp(-4 * 0.3 / parallax)
    assert torch.allclose(fractions.sum(0), total, rtol=rtol)


def test_sensor_layers_and_attenuation():
    layers = resolve_sensor(DetectorConfig(thick_um=450, thicksteps=4, absorption_depth_um=320))
    assert (layers.steps, layers.step, layers.mu) == (4, pytest.approx(150e-6), pytest.approx(3125.0))
    assert resolve_sensor(DetectorConfig()).steps == 1
    unset_depth = resolve_sensor(DetectorConfig(thick_um=100))  # nanoBragg: mu = 1 / thickness
    assert (unset_depth.steps, unset_depth.mu) == (2, pytest.approx(1e4))


def test_pixel_grid_from_detsize_or_counts():
    assert resolve_pixel_grid(DetectorConfig(pixel_mm=0.1, detsize_f_mm=10.24, detsize_s_mm=5.12)).fpixels == 102
    grid = resolve_pixel_grid(DetectorConfig(pixel_mm=0.2, fpixels=30, spixels=20))
    assert (grid.fpixels, grid.spixels, grid.detsize_f) == (30, 20, pytest.approx(6e-3))
