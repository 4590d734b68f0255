"""miniCBF output: a fabio round trip, and what the command puts in it."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from nanobrag import cli
from nanobrag.io.cbf import CBFGeometry, cbf_bytes, read_cbf
from nanobrag.io.smv import read_smv

pytest.importorskip("fabio")

GEOMETRY = CBFGeometry(
    pixel_size=172e-6, thickness=450e-6, exposure=0.5, wavelength=0.9795e-10, distance=0.2,
    beam_fast=0.0123, beam_slow=0.0456, phi_start=10.0, phi_increment=0.25, twotheta=0.0,
)  # fmt: skip


def test_fabio_reads_back_the_pixels_and_the_geometry(tmp_path):
    counts = np.arange(-1, 59, dtype=np.int32).reshape(6, 10) * 1000
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    (tmp_path / "a.cbf").write_bytes(cbf_bytes(counts, GEOMETRY, when))
    header, data = read_cbf(tmp_path / "a.cbf")
    np.testing.assert_array_equal(data, counts)
    assert header["Pixel_size"] == "1.720000e-04 m x 1.720000e-04 m"
    assert header["Wavelength"] == "0.97950 A" and header["Detector_distance"] == "0.20000 m"
    assert header["Beam_xy"] == "(71.51, 265.12) pixels"
    assert header["Start_angle"] == "10.0000 deg." and header["Angle_increment"] == "0.2500 deg."
    assert header["Silicon"] == "sensor, thickness 0.000450 m" and header["Exposure_time"] == "0.5000000 s"
    assert b"2026-01-02T03:04:05.000" in (tmp_path / "a.cbf").read_bytes()


def test_command_writes_noise_photons_and_marks_masked_pixels(tmp_path, monkeypatch):
    from nanobrag.io.smv import SMVHeader, smv_bytes

    monkeypatch.chdir(tmp_path)
    mask = np.ones((8, 8), dtype=np.uint16)
    mask[0, :3] = 0
    header = SMVHeader(
        8, 8, 4e-4, 0.1, 1e-10, 1.6e-3, 1.6e-3, 1.6e-3, 1.6e-3, 3.2e-3, (0, 0, 0), 4.5, 4.5, 0.1, 0, 0, 0
    )
    (tmp_path / "m.img").write_bytes(smv_bytes(mask, header))
    args = ["-cell", "50", "-default_F", "300", "-N", "5", "-mask", "m.img", "-seed", "3", "-nopgm"]
    args += ["-cbffile", "x.cbf", "-quiet"]
    assert cli.main(args) == 0
    cbf_header, counts = read_cbf("x.cbf")
    _, noise = read_smv("noiseimage.img")
    np.testing.assert_array_equal(counts[mask != 0], noise[mask != 0].astype(np.int64) - 40)
    assert np.all(counts[mask == 0] == -1) and counts.max() > 0
    assert cbf_header["Detector_distance"] == "0.10000 m"
    assert cli.main([*args[:-4], "-nonoise", "-cbffile", "y.cbf", "-quiet"]) == 0
    image = np.fromfile("floatimage.bin", "<f4").reshape(8, 8)
    np.testing.assert_array_equal(read_cbf("y.cbf")[1][mask != 0], np.floor(image[mask != 0] + 0.5))
