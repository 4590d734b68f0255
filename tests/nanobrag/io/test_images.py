"""Raw float images, PGM and PNG."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from nanobrag.errors import InputError
from nanobrag.io.images import (
    pgm_bytes,
    png_bytes,
    preview_levels,
    read_float_image,
    read_pgm,
    resolve_pgm_scale,
    roi_slices,
    write_float_image,
    write_pgm,
    write_png,
)

from ..golden_cases import float_image


def test_float_image_round_trip_is_little_endian_slow_major(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    write_float_image(tmp_path / "f.bin", image)
    raw = (tmp_path / "f.bin").read_bytes()
    assert raw[:8] == struct.pack("<2f", image[0, 0], image[0, 1])
    np.testing.assert_array_equal(read_float_image(tmp_path / "f.bin", shape=(3, 4)), image)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was moved into place


@pytest.mark.golden
def test_float_reader_infers_square_shape(shared_dir):
    image = read_float_image(shared_dir / "golden" / "simple_cubic.float.bin")
    assert image.shape == (256, 256) and image.dtype == np.float32
    np.testing.assert_array_equal(image, float_image(shared_dir, "simple_cubic"))


@pytest.mark.parametrize(
    "size, shape, message",
    [(10, None, "whole number"), (12, None, "not a square"), (16, (3, 2), "do not fill")],
)
def test_float_reader_errors(tmp_path, size, shape, message):
    (tmp_path / "x.bin").write_bytes(b"\0" * size)
    with pytest.raises(InputError, match=message):
        read_float_image(tmp_path / "x.bin", shape=shape)
    with pytest.raises(InputError, match="cannot read"):
        read_float_image(tmp_path / "missing.bin")


def test_roi_slices_are_inclusive_and_clamped():
    assert roi_slices((4, 5), (1, 2, 0, 10)) == (slice(0, 4), slice(1, 3))
    assert roi_slices((4, 5), None) == (slice(0, 4), slice(0, 5))
    rows, cols = roi_slices((4, 5), (7, 9, 0, 3))  # entirely off the detector
    assert np.zeros((4, 5))[rows, cols].size == 0


def test_pgm_scale_rules():
    assert resolve_pgm_scale(3.0, rmsd=10.0, intfile_scale=2.0) == 3.0
    assert resolve_pgm_scale(0.0, rmsd=10.0, intfile_scale=2.0) == 250.0 / 50.0
    assert resolve_pgm_scale(-1.0, rmsd=0.0, intfile_scale=2.0) == 2.0


def test_pgm_matches_nanobragg_layout_scaling_and_roi(tmp_path):
    image = np.array([[0.9, 1.5, 300.0], [-2.0, 2.99, 7.0]], dtype=np.float32)
    data = pgm_bytes(image, pgm_scale=1.0, roi=(0, 1, 0, 1))
    header = b"P5\n3 2\n# pixels scaled by 1\n255\n"
    assert data[: len(header)] == header
    assert list(data[len(header) :]) == [0, 1, 0, 0, 2, 0]  # truncated; column 2 outside the ROI
    write_pgm(tmp_path / "p.pgm", image, pgm_scale=2.0)
    np.testing.assert_array_equal(read_pgm(tmp_path / "p.pgm"), [[1, 3, 255], [0, 5, 14]])
    assert b"# pixels scaled by 2\n" in (tmp_path / "p.pgm").read_bytes()


def test_read_pgm_rejects_other_formats(tmp_path):
    (tmp_path / "a.pgm").write_bytes(b"P2\n1 1\n255\n7")
    with pytest.raises(InputError, match="P5"):
        read_pgm(tmp_path / "a.pgm")
    (tmp_path / "b.pgm").write_bytes(b"P5\n4 4\n255\n\0\0")
    with pytest.raises(InputError, match="truncated"):
        read_pgm(tmp_path / "b.pgm")


def _decode_png(data: bytes) -> tuple[int, int, np.ndarray]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload)
        chunks[kind] = payload
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 0) and b"IEND" in chunks
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, width + 1)
    assert (rows[:, 0] == 0).all()  # filter type "none" on every scanline
    return width, height, rows[:, 1:]


def test_png_is_valid_greyscale_of_the_stretched_image(tmp_path):
    image = np.zeros((5, 7), dtype=np.float32)
    image[2, 3], image[0, 0], image[4, 6] = 1000.0, 1.0, np.nan
    write_png(tmp_path / "p.png", image)
    width, height, pixels = _decode_png((tmp_path / "p.png").read_bytes())
    assert (width, height) == (7, 5)
    np.testing.assert_array_equal(pixels, preview_levels(image))
    assert pixels[2, 3] == 255 and 0 < pixels[0, 0] < 255 and pixels[1, 1] == 0 and pixels[4, 6] == 0


def test_png_of_blank_image_is_black():
    _, _, pixels = _decode_png(png_bytes(np.zeros((2, 3))))
    assert (pixels == 0).all()
