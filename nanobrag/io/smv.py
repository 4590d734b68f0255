"""SMV (ADSC) images as nanoBragg writes them, its int-image conversion and its image statistics.

nanoBragg writes two SMV files: the noiseless "int" image (float image * scale + ADC offset) and the
Poisson "noise" image. Both carry the same 512-byte text header, which :func:`smv_header_bytes`
reproduces byte for byte from an :class:`SMVHeader` holding nanoBragg's own variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import InputError
from .ctext import c_atof
from .files import read_input_bytes, write_bytes_atomic
from .images import Roi, roi_slices, row_blocks

HEADER_BYTES = 512
# nanoBragg's RTD is 180*M_1_PI; the literal is M_1_PI from <math.h>, so degrees print identically.
RTD = 180.0 * 0.318309886183790671537767526745028724

SMVKind = Literal["int", "noise"]


@dataclass(frozen=True)
class SMVHeader:
    """The detector and beam quantities nanoBragg prints into SMV headers.

    Names are nanoBragg's C variables, in its internal SI units: lengths in metres except
    ``dials_origin`` (mm, as C keeps it), angles in radians, ``ORGX``/``ORGY`` in pixels.
    """

    fpixels: int
    spixels: int
    pixel_size: float
    distance: float
    lambda0: float
    Xbeam: float
    Ybeam: float
    Fbeam: float
    Sbeam: float
    detsize_s: float
    dials_origin: tuple[float, float, float]
    ORGX: float
    ORGY: float
    close_distance: float
    phi0: float
    osc: float
    twotheta: float


def smv_header_bytes(header: SMVHeader, kind: SMVKind = "int") -> bytes:
    """The 512-byte header nanoBragg writes, with its keys, order and ``%g`` formatting.

    The int and noise files differ only in how the DENZO beam centre is computed (``S - 0*pixel``
    versus ``S + 0*pixel``), which shows when the centre is -0.0; ``kind`` picks the variant.
    When long numbers make the text exceed 512 bytes, nanoBragg still claims 512 and so writes a
    corrupt file; here the header then grows to the next multiple of 512 and says so instead.

    Args:
        header: the values to print.
        kind: "int" or "noise" (the file the header opens).

    Returns:
        The header, 512 bytes, padded with spaces and closed by "}" and a form feed, as nanoBragg pads it.
    """
    size = HEADER_BYTES
    while True:
        text = _header_text(header, kind, size)
        if len(text) <= size:
            return text.ljust(size, b" ")
        size = -(-len(text) // HEADER_BYTES) * HEADER_BYTES


def _header_text(header: SMVHeader, kind: SMVKind, header_bytes: int) -> bytes:
    h = header
    if kind == "int":
        denzo_x, denzo_y = h.Sbeam - 0.0 * h.pixel_size, h.Fbeam - 0.0 * h.pixel_size
    elif kind == "noise":
        denzo_x, denzo_y = h.Sbeam + 0.0 * h.pixel_size, h.Fbeam + 0.0 * h.pixel_size
    else:
        raise ValueError(f"SMV kind must be 'int' or 'noise', not {kind!r}")
    ox, oy, oz = h.dials_origin
    return (
        "{\n"
        f"HEADER_BYTES={header_bytes};\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
        f"SIZE1={h.fpixels:d};\nSIZE2={h.spixels:d};\n"
        f"PIXEL_SIZE={h.pixel_size * 1000.0:g};\nDISTANCE={h.distance * 1000.0:g};\n"
        f"WAVELENGTH={h.lambda0 * 1e10:g};\n"
        f"BEAM_CENTER_X={h.Xbeam * 1000.0:g};\nBEAM_CENTER_Y={h.Ybeam * 1000:g};\n"
        f"ADXV_CENTER_X={h.Fbeam * 1000.0:g};\nADXV_CENTER_Y={(h.detsize_s - h.Sbeam) * 1000:g};\n"
        f"MOSFLM_CENTER_X={(h.Sbeam - 0.5 * h.pixel_size) * 1000.0:g};\n"
        f"MOSFLM_CENTER_Y={(h.Fbeam - 0.5 * h.pixel_size) * 1000:g};\n"
        f"DENZO_X_BEAM={denzo_x * 1000.0:g};\nDENZO_Y_BEAM={denzo_y * 1000:g};\n"
        f"DIALS_ORIGIN={ox:g},{oy:g},{oz:g}\n"  # nanoBragg writes this line without a semicolon
        f"XDS_ORGX={h.ORGX:g};\nXDS_ORGY={h.ORGY:g};\n"
        f"CLOSE_DISTANCE={h.close_distance * 1000.0:g};\n"
        f"PHI={h.phi0 * RTD:g};\nOSC_START={h.phi0 * RTD:g};\nOSC_RANGE={h.osc * RTD:g};\n"
        f"TWOTHETA={h.twotheta * RTD:g};\n"
        "DETECTOR_SN=000;\nBEAMLINE=fake;\n"
        "}\f"
    ).encode("ascii")


def smv_parts(pixels: np.ndarray, header: SMVHeader, kind: SMVKind = "int") -> tuple[bytes, memoryview]:
    """An SMV file as (header, pixel data): the (slow, fast) pixels as little-endian uint16, uncopied."""
    pixels = np.asarray(pixels)
    if pixels.shape != (header.spixels, header.fpixels):
        raise ValueError(f"pixels have shape {pixels.shape}, header says {(header.spixels, header.fpixels)}")
    return smv_header_bytes(header, kind), memoryview(np.ascontiguousarray(pixels, dtype="<u2").data).cast("B")


def smv_bytes(pixels: np.ndarray, header: SMVHeader, kind: SMVKind = "int") -> bytes:
    """A whole SMV file: header, then the (slow, fast) pixels as little-endian uint16."""
    return b"".join(smv_parts(pixels, header, kind))


def write_smv(
    path: str | os.PathLike[str], pixels_uint16: np.ndarray, header: SMVHeader, kind: SMVKind = "int"
) -> None:
    """Write an SMV file as nanoBragg does: its 512-byte header, then the pixels as little-endian uint16.

    Args:
        path: the target file (written atomically).
        pixels: unsigned 16-bit pixels (slow, fast).
        header: the header values (:class:`SMVHeader`).
        kind: "int" or "noise".
    """
    write_bytes_atomic(path, smv_bytes(pixels_uint16, header, kind))


_SMV_TYPES = {
    "unsigned_short": "u2",
    "signed_short": "i2",
    "unsigned_int": "u4",
    "unsigned_long": "u4",  # SMV's "long" is 32-bit
    "signed_long": "i4",
    "float": "f4",
}
_SMV_BYTE_ORDERS = {"little_endian": "<", "big_endian": ">"}


def _header_field(header: dict[str, str], key: str, path: str | os.PathLike[str]) -> str:
    try:
        return header[key]
    except KeyError:
        raise InputError(f"{path}: SMV header has no {key}") from None


def read_smv(path: str | os.PathLike[str]) -> tuple[dict[str, str], np.ndarray]:
    """Header (key -> value text) and pixels (slow, fast) of an SMV file.

    Honours HEADER_BYTES, SIZE1 (fast) / SIZE2 (slow), BYTE_ORDER and TYPE; nanoBragg's files give
    uint16 pixels.

    Args:
        path: the SMV file (an -img header source or a -mask).

    Returns:
        ``(header, pixels)``: the header's keys and value texts, and the pixels as an array of shape (SIZE2, SIZE1).

    Raises:
        InputError: a missing or malformed header, or fewer pixel bytes than the header announces.
    """
    data = read_input_bytes(path)
    end = data.find(b"}")
    if not data.startswith(b"{") or end < 0:
        raise InputError(f"{path}: not an SMV file (no {{...}} header)")
    header: dict[str, str] = {}
    for line in data[1:end].decode("ascii", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip().rstrip(";").strip()
    try:
        header_bytes = int(_header_field(header, "HEADER_BYTES", path))
        fast = int(_header_field(header, "SIZE1", path))
        slow = int(_header_field(header, "SIZE2", path))
    except ValueError as err:
        raise InputError(f"{path}: bad number in SMV header: {err}") from None
    order = _SMV_BYTE_ORDERS.get(header.get("BYTE_ORDER", "little_endian"))
    kind = _SMV_TYPES.get(header.get("TYPE", "unsigned_short"))
    if order is None or kind is None:
        raise InputError(f"{path}: unsupported BYTE_ORDER/TYPE {header.get('BYTE_ORDER')}/{header.get('TYPE')}")
    dtype = np.dtype(order + kind)
    if fast < 1 or slow < 1:
        raise InputError(f"{path}: SMV image size must be positive, got SIZE1={fast} SIZE2={slow}")
    if header_bytes <= end:
        raise InputError(f"{path}: HEADER_BYTES={header_bytes} ends inside the header ({end + 1} bytes)")
    if len(data) < header_bytes + fast * slow * dtype.itemsize:
        raise InputError(f"{path}: file too short for a {fast}x{slow} {header.get('TYPE')} image")
    pixels = np.frombuffer(data, dtype=dtype, count=fast * slow, offset=header_bytes)
    return header, pixels.reshape(slow, fast).astype(dtype.newbyteorder("="))


def read_smv_header_text(path: str | os.PathLike[str]) -> str:
    """The header text of an SMV file: its first HEADER_BYTES bytes (512 when the value is missing)."""
    data = read_input_bytes(path)
    text = data[:HEADER_BYTES].decode("ascii", errors="replace")
    size = smv_header_value(text, "HEADER_BYTES", last_substring=False)
    if size is not None and size > HEADER_BYTES:
        text = data[: int(size)].decode("ascii", errors="replace")
    return text.split("}", 1)[0]


def smv_header_value(text: str, keyword: str, *, last_substring: bool = True) -> float | None:
    """A number from an SMV header, found as nanoBragg's ValueOf finds it, or None when absent.

    nanoBragg looks for the *last* occurrence of ``keyword`` anywhere in the header, so "DISTANCE"
    finds CLOSE_DISTANCE's value and "ORGX" finds XDS_ORGX's; then it reads the number after the next
    '=' with atof (0 when there is none). ``last_substring=False`` matches the key exactly instead.
    """
    if last_substring:
        at = text.rfind(keyword)
        if at < 0:
            return None
        rest = text[at + len(keyword) :]
        equals = rest.find("=")
        if equals < 0:
            return 0.0
        return c_atof(rest[equals + 1 :])
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lstrip("{").strip() == keyword:
            return c_atof(value)
    return None


@dataclass(frozen=True)
class ImageStats:
    """nanoBragg's image statistics over the ROI.

    ``max_I`` starts from 0 as in C (so it is 0 for an all-negative image); ``max_pixel`` is the
    (slow, fast) index of its first occurrence, None when ``max_I`` is 0.
    """

    max_I: float
    max_pixel: tuple[int, int] | None
    mean: float
    rms: float
    rmsd: float
    pixels: int


def image_stats(float_image: np.ndarray, roi: Roi | None = None, evaluated: np.ndarray | None = None) -> ImageStats:
    """max_I, mean, rms and rmsd as nanoBragg prints them (denominators n-1, at least 1).

    ``evaluated`` marks the pixels nanoBragg simulated (a -mask skips the others): max_I, mean and
    rms are taken over those as nanoBragg accumulates them in its pixel loop, while its rmsd loop
    runs over the whole region of interest again, masked pixels included.
    """
    image = np.asarray(float_image, dtype=np.float32)
    rows, cols = roi_slices(image.shape, roi)
    area = (rows.stop - rows.start) * (cols.stop - cols.start)
    mask = None if evaluated is None else np.asarray(evaluated)
    n = area if mask is None else int(np.count_nonzero(mask[rows, cols]))
    # Sums in double, as C accumulates them, over row blocks so that no double copy of a large
    # image is ever made.
    blocks = row_blocks(rows)

    def simulated(block: slice) -> np.ndarray:
        values = image[block, cols].astype(np.float64)
        return values if mask is None else values[mask[block, cols]]

    total = sum(float(simulated(b).sum()) for b in blocks)
    squares = sum(float(np.square(simulated(b)).sum()) for b in blocks)
    mean = total / max(n, 1)
    deviations = sum(float(np.square(image[b, cols].astype(np.float64) - mean).sum()) for b in blocks)
    rms = float(np.sqrt(squares / (max(n, 2) - 1)))
    rmsd = float(np.sqrt(deviations / (max(area, 2) - 1)))
    max_I, max_pixel = 0.0, None
    if n:
        values = image[rows, cols]  # masked pixels were never simulated and hold 0
        if float(values.max()) > 0.0:
            slow, fast = np.unravel_index(int(np.argmax(values)), values.shape)
            max_I = float(values[slow, fast])
            max_pixel = (int(slow) + rows.start, int(fast) + cols.start)
    return ImageStats(max_I=max_I, max_pixel=max_pixel, mean=mean, rms=rms, rmsd=rmsd, pixels=n)


def int_image(
    float_image: np.ndarray, scale: float, adc_offset: float, roi: Roi | None = None
) -> tuple[np.ndarray, float]:
    """nanoBragg's noiseless SMV pixels and the scale used.

    With ``scale <= 0`` the scale is 55000/max_I (1 when max_I is 0). Each ROI pixel is
    ``float * scale + adc`` in double, clipped to [0, 65535], rounded as C's
    ``floorf(test + 0.5)`` (the sum is rounded to float before the floor); other pixels are 0.
    """
    image = np.asarray(float_image, dtype=np.float32)
    if scale <= 0.0:
        max_I = image_stats(image, roi).max_I
        scale = 55000.0 / max_I if max_I > 0.0 else 1.0
    rows, cols = roi_slices(image.shape, roi)
    pixels = np.zeros(image.shape, dtype=np.uint16)
    for block in row_blocks(rows):
        test = np.clip(image[block, cols].astype(np.float64) * scale + adc_offset, 0.0, 65535.0)
        pixels[block, cols] = np.floor((test + 0.5).astype(np.float32)).astype(np.uint16)
    return pixels, scale
