"""-mask and -img: SMV files whose header sets the geometry, and whose pixels (-mask) say what to simulate."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from nanobrag import build_setup, cli, render
from nanobrag.errors import InputError
from nanobrag.flags import parse_flags
from nanobrag.io.smv import SMVHeader, smv_bytes, smv_header_value

from ..golden_cases import log_values

BASE = "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 5 -lambda 1 -oversample 1"


def _smv(path, pixels: np.ndarray, pixel_mm: float = 1.0, distance_mm: float = 100.0) -> None:
    """An SMV file with the beam at the detector centre (where -mask and -img read the same centre)."""
    spixels, fpixels = pixels.shape
    p = pixel_mm / 1000
    x, y = p * fpixels / 2, p * spixels / 2
    header = SMVHeader(fpixels, spixels, p, distance_mm / 1000, 1e-10, x, y, x, y, p * spixels,
                       (0, 0, 0), 3.5, 2.5, distance_mm / 1000, 0, 0, 0)  # fmt: skip
    path.write_bytes(smv_bytes(pixels.astype(np.uint16), header))


def test_header_values_are_found_as_nanobraggs_valueof_finds_them():
    text = "{\nHEADER_BYTES=512;\nDISTANCE=120;\nXDS_ORGX=44.5;\nCLOSE_DISTANCE=110;\nPHI=5;\nEMPTY\n"
    assert smv_header_value(text, "DISTANCE") == 110  # the last occurrence: CLOSE_DISTANCE
    assert smv_header_value(text, "DISTANCE", last_substring=False) == 120
    assert smv_header_value(text, "ORGX") == 44.5
    assert smv_header_value(text, "TWOTHETA") is None
    assert smv_header_value(text, "EMPTY") == 0.0  # no '=' after it: nanoBragg's ValueOf gives 0


def test_mask_pixels_are_not_simulated(tmp_path):
    mask = np.ones((10, 12), dtype=np.uint16)
    mask[2:5, 3:9] = 0
    _smv(tmp_path / "m.img", mask)
    masked = build_setup(parse_flags(f"{BASE} -mask {tmp_path / 'm.img'}".split())[0])
    assert masked.geometry.grid.fpixels == 12 and masked.geometry.grid.spixels == 10  # from the header
    _smv(tmp_path / "all.img", np.ones_like(mask))
    full = render(build_setup(parse_flags(f"{BASE} -img {tmp_path / 'all.img'}".split())[0]))
    image = render(masked)
    assert torch.all(image[mask == 0] == 0)
    # The same pixels, to round-off: a chunk's matrix product rounds with the chunk's width.
    torch.testing.assert_close(image[mask != 0], full[mask != 0], rtol=1e-13, atol=0)


def test_masked_pixels_do_not_count_as_evaluated(tmp_path):
    """The stale phi-0 orientation belongs to the first pixel nanoBragg *evaluates*: a masked corner
    passes it on to the next pixel."""
    mask = np.ones((6, 6), dtype=np.uint16)
    mask[0, 0] = 0
    _smv(tmp_path / "m.img", mask)
    sweep = f"{BASE} -phi 0 -osc 2 -phisteps 2"
    image = render(build_setup(parse_flags(f"{sweep} -mask {tmp_path / 'm.img'}".split())[0]))
    corrected = render(build_setup(parse_flags(f"{sweep} -mask {tmp_path / 'm.img'} -corrected".split())[0]))
    assert float(image[0, 1]) == pytest.approx(float(corrected[0, 1]), rel=1e-12)  # the first evaluated
    assert float(image[0, 2]) != pytest.approx(float(corrected[0, 2]), rel=1e-6)


def test_mask_for_another_detector_shape(tmp_path):
    """nanoBragg reads the mask's pixels in order onto the detector's grid; fewer pixels are refused."""
    mask = np.arange(1, 21).reshape(4, 5) % 3
    _smv(tmp_path / "m.img", mask)
    setup = build_setup(parse_flags(f"{BASE} -mask {tmp_path / 'm.img'} -detpixels 4".split())[0])
    assert torch.equal(setup.mask, torch.as_tensor(mask.reshape(-1)[:16].reshape(4, 4) != 0))
    with pytest.raises(InputError, match=r"^-mask: .*m.img has 5x4 pixels, fewer than the detector's 8x8"):
        build_setup(parse_flags(f"{BASE} -mask {tmp_path / 'm.img'} -detpixels 8".split())[0])


def test_img_header_sets_geometry_and_flags_override_it(tmp_path):
    _smv(tmp_path / "h.img", np.zeros((6, 8)), pixel_mm=0.2, distance_mm=150)
    det = parse_flags(f"{BASE} -img {tmp_path / 'h.img'}".split())[0].detector
    assert (det.fpixels, det.spixels, det.pixel_mm, det.distance_mm) == (8, 6, 0.2, 150)
    assert (det.Xbeam_mm, det.Ybeam_mm, det.pivot) == (0.8, 0.6, None)  # the header does not choose a pivot
    det = parse_flags(f"-pixel 0.1 {BASE} -img {tmp_path / 'h.img'} -detpixels 10".split())[0].detector
    assert (det.fpixels, det.pixel_mm) == (10, 0.1)  # flags win wherever they are on the line


@pytest.mark.golden
def test_mask_statistics_are_over_simulated_pixels(shared_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(shared_dir / "golden" / "mask.img", tmp_path)
    args = ["-cell", "80", "80", "80", "90", "90", "90", "-default_F", "10", "-N", "3", "-mask", "mask.img"]
    args += ["-nonoise", "-nopgm"]
    assert cli.main(args) == 0
    mean, rms, rmsd = log_values(shared_dir, "mask_from_smv", r"mean= (\S+) rms= (\S+) rmsd= (\S+)")
    assert f"mean= {mean} rms= {rms} rmsd= {rmsd}" in capsys.readouterr().out
