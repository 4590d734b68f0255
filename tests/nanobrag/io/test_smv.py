"""SMV header, int-image conversion and statistics against nanoBragg's own files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nanobrag.errors import InputError
from nanobrag.io.smv import SMVHeader, image_stats, int_image, read_smv, smv_bytes, smv_header_bytes, write_smv

from ..golden_cases import float_image, log_values, smv_header_from_log

CASE = "smv_int_noise"


@pytest.fixture
def header_from_log(shared_dir) -> SMVHeader:
    return smv_header_from_log(shared_dir, CASE)


@pytest.mark.golden
@pytest.mark.parametrize("kind, suffix", [("int", "int.img"), ("noise", "noise.img")])
def test_header_bytes_match_nanobragg(shared_dir, header_from_log, kind, suffix):
    reference = (shared_dir / "golden" / f"{CASE}.{suffix}").read_bytes()[:512]
    assert smv_header_bytes(header_from_log, kind) == reference


@pytest.mark.golden
def test_int_image_matches_nanobragg_pixel_for_pixel(shared_dir):
    pixels, scale = int_image(float_image(shared_dir, CASE), scale=2.5, adc_offset=40.0)
    _, reference = read_smv(shared_dir / "golden" / f"{CASE}.int.img")
    assert scale == 2.5
    assert pixels.dtype == np.uint16
    np.testing.assert_array_equal(pixels, reference)


@pytest.mark.golden
def test_statistics_print_like_nanobragg(shared_dir):
    stats = image_stats(float_image(shared_dir, CASE))
    (max_I,) = log_values(shared_dir, CASE, r"max_I = (\S+)")
    mean, rms, rmsd = log_values(shared_dir, CASE, r"mean= (\S+) rms= (\S+) rmsd= (\S+)")
    assert [f"{v:g}" for v in (stats.max_I, stats.mean, stats.rms, stats.rmsd)] == [max_I, mean, rms, rmsd]
    # nanoBragg reports the last sub-pixel centre of the brightest pixel: 6x6 oversampling, 0.4 mm pixels.
    at_fast, at_slow = (float(v) for v in log_values(shared_dir, CASE, r"max_I = \S+  at (\S+) (\S+)"))
    subpixel = 0.0004 / 6
    assert stats.max_pixel == (round(at_slow / subpixel - 5.5) // 6, round(at_fast / subpixel - 5.5) // 6)


@pytest.mark.golden
def test_read_smv_header_and_pixels(shared_dir):
    header, pixels = read_smv(shared_dir / "golden" / f"{CASE}.noise.img")
    assert header["SIZE1"] == "256" and header["DIALS_ORIGIN"] == "-51.6,51.6,-100"
    assert pixels.shape == (256, 256) and pixels.dtype == np.uint16
    assert pixels.min() >= 40  # the ADC offset of the case


def test_int_image_autoscale_roi_and_clipping():
    image = np.array([[0.0, 1.0, 2.0], [-5.0, 1e9, 0.5]], dtype=np.float32)
    pixels, scale = int_image(image, scale=0.0, adc_offset=10.0, roi=(0, 1, 0, 1))
    assert scale == 55000.0 / 1e9  # max over the ROI only
    assert pixels[0, 2] == 0 and pixels[1, 2] == 0  # outside the ROI
    assert pixels[1, 1] == 55010  # max maps to 55000 + adc
    assert pixels[1, 0] == 10  # negative float clipped through the offset
    clipped, _ = int_image(image, scale=1.0, adc_offset=-20.0)
    assert clipped[1, 1] == 65535 and clipped[1, 0] == 0


def test_int_image_rounds_through_float_like_c():
    # 0.49999999 + 0.5 is below 1 in double but rounds to 1.0f before floorf, as in nanoBragg.
    pixels, _ = int_image(np.zeros((1, 1), np.float32), scale=1.0, adc_offset=0.49999999)
    assert pixels[0, 0] == 1


def test_autoscale_of_blank_image_is_one():
    pixels, scale = int_image(np.zeros((2, 2), np.float32), scale=0.0, adc_offset=40.0)
    assert scale == 1.0 and (pixels == 40).all()
    assert image_stats(np.zeros((2, 2), np.float32)).max_pixel is None


def _header(**changes) -> SMVHeader:
    base = SMVHeader(
        fpixels=3, spixels=2, pixel_size=1e-4, distance=0.1, lambda0=1e-10, Xbeam=0.0, Ybeam=0.0,
        Fbeam=-0.0, Sbeam=-0.0, detsize_s=2e-4, dials_origin=(0.0, 0.0, -100.0), ORGX=0.5, ORGY=0.5,
        close_distance=0.1, phi0=0.0, osc=0.0, twotheta=0.0,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def test_denzo_lines_differ_between_int_and_noise_files_only_at_negative_zero():
    int_text, noise_text = smv_header_bytes(_header(), "int"), smv_header_bytes(_header(), "noise")
    assert b"DENZO_X_BEAM=-0;\nDENZO_Y_BEAM=-0;" in int_text
    assert b"DENZO_X_BEAM=0;\nDENZO_Y_BEAM=0;" in noise_text
    assert int_text.replace(b"=-0;\nDENZO_Y_BEAM=-0", b"=0;\nDENZO_Y_BEAM=0").rstrip() == noise_text.rstrip()


def test_overlong_header_grows_to_next_block_and_stays_readable(tmp_path):
    long_values = _header(
        pixel_size=1.23456789e-4, distance=0.123456789, lambda0=0.987654321e-10, Xbeam=0.0512345678,
        Ybeam=0.0512345678, Fbeam=-0.0123456789, Sbeam=-0.0123456789, dials_origin=(-51.23456, 52.34567, -123.4567),
        ORGX=-123.456789, ORGY=-123.456789, close_distance=0.123456789, phi0=0.123456, osc=0.0123456,
        twotheta=0.123456,
    )  # fmt: skip
    text = smv_header_bytes(long_values)
    assert len(text) == 1024 and text.startswith(b"{\nHEADER_BYTES=1024;\n")
    pixels = np.arange(6, dtype=np.uint16).reshape(2, 3)
    write_smv(tmp_path / "long.img", pixels, long_values)
    header, back = read_smv(tmp_path / "long.img")
    assert header["HEADER_BYTES"] == "1024"
    np.testing.assert_array_equal(back, pixels)


def test_smv_round_trip_and_shape_check(tmp_path):
    pixels = np.array([[1, 2, 65535], [0, 40, 7]], dtype=np.uint16)
    write_smv(tmp_path / "a.img", pixels, _header(), kind="noise")
    header, back = read_smv(tmp_path / "a.img")
    assert header["TYPE"] == "unsigned_short" and header["BEAMLINE"] == "fake"
    np.testing.assert_array_equal(back, pixels)
    with pytest.raises(ValueError, match="shape"):
        smv_bytes(pixels.T, _header())


def test_read_smv_honours_byte_order_and_type(tmp_path):
    text = b"{\nHEADER_BYTES=512;\nBYTE_ORDER=big_endian;\nTYPE=signed_short;\nSIZE1=2;\nSIZE2=1;\n}\f"
    (tmp_path / "b.img").write_bytes(text.ljust(512) + np.array([-2, 300], dtype=">i2").tobytes())
    _, pixels = read_smv(tmp_path / "b.img")
    assert pixels.tolist() == [[-2, 300]]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"P5\n1 1\n255\n\0", "not an SMV file"),
        (b"{\nHEADER_BYTES=512;\nSIZE1=4;\n}".ljust(512), "no SIZE2"),
        (b"{\nHEADER_BYTES=512;\nSIZE1=4;\nSIZE2=4;\n}".ljust(512) + b"\0" * 8, "too short"),
        (b"{\nHEADER_BYTES=512;\nTYPE=complex;\nSIZE1=1;\nSIZE2=1;\n}".ljust(514), "unsupported"),
    ],
)
def test_read_smv_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.img"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        read_smv(path)
    assert str(path) in str(err.value)
