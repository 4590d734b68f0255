"""Raw float images, nanoBragg's PGM pictures, and PNG previews.

Images are numpy arrays of shape (slow, fast); on disk they are slow-major (row after row of fast
pixels), the layout nanoBragg writes. ``roi`` arguments are nanoBragg's inclusive pixel bounds
``(xmin, xmax, ymin, ymax)`` on the fast (x) and slow (y) axes; bounds past the edge are allowed
(nanoBragg's default ``xmax`` is the pixel count itself).
"""

from __future__ import annotations

import math
import os
import struct
import zlib

import numpy as np

from ..errors import InputError
from .files import read_input_bytes, write_bytes_atomic

Roi = tuple[int, int, int, int]


def row_blocks(rows: slice, block: int = 256) -> list[slice]:
    """``rows`` cut into slices of at most ``block`` rows, so per-pixel conversions stay small in memory."""
    return [slice(start, min(start + block, rows.stop)) for start in range(rows.start, rows.stop, block)]


def roi_slices(shape: tuple[int, int], roi: Roi | None) -> tuple[slice, slice]:
    """(slow, fast) slices selecting the pixels nanoBragg's inclusive ``roi`` test keeps.

    Args:
        shape: the image shape (slow, fast).
        roi: nanoBragg's inclusive (xmin, xmax, ymin, ymax) in (fast, slow) pixels, or None.

    Returns:
        ``(slow_slice, fast_slice)``.

    Example:
        >>> roi_slices((10, 20), (2, 5, 0, 3))
        (slice(0, 4, None), slice(2, 6, None))
    """
    spixels, fpixels = shape
    if roi is None:
        return slice(0, spixels), slice(0, fpixels)
    xmin, xmax, ymin, ymax = roi
    return (
        slice(max(ymin, 0), max(min(ymax, spixels - 1) + 1, 0)),
        slice(max(xmin, 0), max(min(xmax, fpixels - 1) + 1, 0)),
    )


def require_finite(image: np.ndarray) -> None:
    """Refuse to write an image with NaN or infinite pixels: nanoBragg would, with exit status 0.

    Every input is checked where it enters; this is the last guard, for combinations of valid inputs
    whose product still overflows (say a huge fluence times a huge structure factor in float32).
    """
    bad = ~np.isfinite(image)
    if bad.any():
        slow, fast = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise InputError(
            f"the simulated image has {int(bad.sum())} pixels that are not finite numbers (NaN or infinity),"
            f" the first at pixel (fast {fast}, slow {slow}): the inputs overflow the arithmetic; no file was written"
        )


def float_image_bytes(image: np.ndarray) -> memoryview:
    """The raw file content, little-endian float32, slow-major: a view (no copy) when ``image`` is one."""
    return memoryview(np.ascontiguousarray(image, dtype="<f4").data).cast("B")


def write_float_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write nanoBragg's raw float image: little-endian float32, slow-major, no header.

    Args:
        path: the target file (written atomically).
        image: pixels (slow, fast); converted to float32 if needed.
    """
    write_bytes_atomic(path, float_image_bytes(image))


def read_float_image(path: str | os.PathLike[str], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a raw float32 image; without ``shape`` the image must be square.

    Args:
        path: the raw file.
        shape: (slow, fast), or None for a square image.

    Returns:
        The pixels as a float32 array of shape (slow, fast).

    Raises:
        InputError: the size does not match the shape (or is no square), a pixel is not finite, or the
            file cannot be read.
    """
    data = read_input_bytes(path)
    if len(data) % 4:
        raise InputError(f"{path}: size {len(data)} bytes is not a whole number of float32 pixels")
    pixels = len(data) // 4
    if shape is None:
        side = math.isqrt(pixels)
        if side * side != pixels:
            raise InputError(f"{path}: {pixels} pixels is not a square image; give its shape")
        shape = (side, side)
    if shape[0] * shape[1] != pixels:
        raise InputError(f"{path}: {pixels} pixels do not fill a {shape[0]}x{shape[1]} image")
    image = np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)
    bad = int(np.count_nonzero(~np.isfinite(image)))
    if bad:
        raise InputError(f"{path}: {bad} pixels are not finite numbers (NaN or infinity)")
    return image


def resolve_pgm_scale(pgm_scale: float, rmsd: float, intfile_scale: float) -> float:
    """nanoBragg's PGM scale: the given one if positive, else 250/(5*rmsd), else the int-file scale."""
    if pgm_scale > 0.0:
        return pgm_scale
    if rmsd > 0.0:
        return 250.0 / (5.0 * rmsd)
    return intfile_scale


def pgm_bytes(image: np.ndarray, pgm_scale: float, roi: Roi | None = None) -> bytes:
    """nanoBragg's 8-bit P5 picture: pixel * scale, clipped at 255, truncated; 0 outside the ROI.

    ``pgm_scale`` is the final scale (see :func:`resolve_pgm_scale`).
    """
    image = np.asarray(image, dtype=np.float32)
    spixels, fpixels = image.shape
    pixels = np.zeros(image.shape, dtype=np.uint8)
    rows, cols = roi_slices(image.shape, roi)
    for block in row_blocks(rows):
        # C converts the double product to unsigned char (truncation); negatives, undefined in C, become 0.
        pixels[block, cols] = np.clip(image[block, cols].astype(np.float64) * pgm_scale, 0.0, 255.0).astype(np.uint8)
    header = f"P5\n{fpixels} {spixels}\n# pixels scaled by {pgm_scale:g}\n255\n".encode("ascii")
    return header + pixels.tobytes()


def write_pgm(path: str | os.PathLike[str], image: np.ndarray, pgm_scale: float, roi: Roi | None = None) -> None:
    """Write nanoBragg's 8-bit P5 PGM picture of ``image`` (see :func:`pgm_bytes`).

    Args:
        path: the target file (written atomically).
        image: pixels (slow, fast).
        pgm_scale: the final scale (see :func:`resolve_pgm_scale`).
        roi: pixels outside it are 0.
    """
    write_bytes_atomic(path, pgm_bytes(image, pgm_scale, roi))


def read_pgm(path: str | os.PathLike[str]) -> np.ndarray:
    """Pixels (slow, fast) of an 8-bit binary PGM (P5) file; ``#`` comment lines are skipped."""
    data = read_input_bytes(path)
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.find(b"\n", pos) + 1 or len(data)
            continue
        end = pos
        while end < len(data) and not data[end : end + 1].isspace():
            end += 1
        if end == pos:
            raise InputError(f"{path}: truncated PGM header")
        fields.append(data[pos:end])
        pos = end
    magic, width, height, maxval = fields
    if magic != b"P5" or maxval != b"255":
        raise InputError(f"{path}: not an 8-bit binary PGM (P5, maxval 255)")
    try:
        shape = (int(height), int(width))
    except ValueError as err:
        raise InputError(f"{path}: bad PGM size {width!r} x {height!r}") from err
    pixels = data[pos + 1 : pos + 1 + shape[0] * shape[1]]  # one whitespace byte ends the header
    if len(pixels) != shape[0] * shape[1]:
        raise InputError(f"{path}: PGM pixel data is truncated")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(shape).copy()


def preview_levels(image: np.ndarray, percentile: float = 99.5, decades: float = 3.0) -> np.ndarray:
    """8-bit grey levels for a picture: log stretch of [0, white], white = the given percentile.

    Diffraction images span many decades with a few bright spots, so a linear scale shows nothing
    but the spots; a log stretch over ``decades`` below a percentile white point shows both.
    """
    values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    positive = values[values > 0]
    if positive.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    white = float(np.percentile(positive, percentile)) or float(positive.max())
    gain = 10.0**decades
    stretched = np.log1p(gain * np.clip(values / white, 0.0, 1.0)) / math.log1p(gain)
    return np.round(255.0 * stretched).astype(np.uint8)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bytes(image: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of ``image`` (see :func:`preview_levels`), without any imaging library."""
    levels = preview_levels(image)
    height, width = levels.shape
    # Each scanline starts with its filter type; 0 = none.
    scanlines = np.hstack([np.zeros((height, 1), dtype=np.uint8), levels]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanlines, 6))
        + _png_chunk(b"IEND", b"")
    )


def write_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an 8-bit greyscale PNG preview of ``image`` (see :func:`png_bytes`).

    Args:
        path: the target file (written atomically).
        image: pixels (slow, fast).
    """
    write_bytes_atomic(path, png_bytes(image))
