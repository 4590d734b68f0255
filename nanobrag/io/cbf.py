"""miniCBF images (``-cbffile``): integer photons with a Pilatus-style geometry header.

DIALS and XDS read miniCBF natively. The header lines are the PILATUS 1.2 convention's
(``_array_data.header_contents``): pixel size, sensor thickness, exposure, wavelength, detector
distance (sample to detector plane), direct-beam position in pixels, spindle start and increment,
two-theta. The file is written by fabio (byte-offset compression), which also reads it back.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from .files import read_input_bytes

MASKED = -1  # the Pilatus convention for pixels that must not be used


@dataclass(frozen=True)
class CBFGeometry:
    """What the header says, in SI units and degrees (nanoBragg's variables, as for SMV)."""

    pixel_size: float  # m
    thickness: float  # m, sensor
    exposure: float  # s
    wavelength: float  # m
    distance: float  # m, sample to the detector plane
    beam_fast: float  # m from the first pixel's corner, along the fast axis
    beam_slow: float  # m, along the slow axis
    phi_start: float  # deg
    phi_increment: float  # deg
    twotheta: float  # deg


def header_contents(geometry: CBFGeometry, when: datetime | None = None) -> str:
    g = geometry
    stamp = (when or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    lines = [
        "Detector: nanobrag simulation, S/N 0",
        stamp,
        f"Pixel_size {g.pixel_size:.6e} m x {g.pixel_size:.6e} m",
        f"Silicon sensor, thickness {g.thickness:.6f} m",
        f"Exposure_time {g.exposure:.7f} s",
        f"Exposure_period {g.exposure:.7f} s",
        "Count_cutoff 1048576 counts",
        f"Wavelength {g.wavelength * 1e10:.5f} A",
        f"Detector_distance {g.distance:.5f} m",
        f"Beam_xy ({g.beam_fast / g.pixel_size:.2f}, {g.beam_slow / g.pixel_size:.2f}) pixels",
        f"Start_angle {g.phi_start:.4f} deg.",
        f"Angle_increment {g.phi_increment:.4f} deg.",
        f"Detector_2theta {g.twotheta:.4f} deg.",
        f"Phi {g.phi_start:.4f} deg.",
        "N_oscillations 1",
    ]
    return "\r\n".join(f"# {line}" for line in lines)


def cbf_bytes(counts: np.ndarray, geometry: CBFGeometry, when: datetime | None = None) -> bytes:
    """A whole miniCBF file for (slow, fast) integer ``counts`` (stored as int32).

    Args:
        counts: integer pixels (slow, fast).
        geometry: the header values (:class:`CBFGeometry`).
        when: the time stamp of the header (now when None).

    Returns:
        The file's bytes (byte-offset compression, Pilatus-style header), written by fabio.
    """
    import fabio.cbfimage  # imported here: only -cbffile needs it

    image = fabio.cbfimage.CbfImage(data=np.ascontiguousarray(counts, dtype=np.int32))
    image.header["_array_data.header_convention"] = "PILATUS_1.2"
    image.header["_array_data.header_contents"] = header_contents(geometry, when)
    # fabio writes to a named file; the bytes are then staged like every other output.
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "image.cbf")
        image.write(path)
        return read_input_bytes(path)


def read_cbf(path: str | os.PathLike[str]) -> tuple[dict[str, str], np.ndarray]:
    """Header lines (key -> rest of the line) and (slow, fast) data of a miniCBF file, via fabio.

    Args:
        path: the miniCBF file.

    Returns:
        ``(header, data)``: header lines by key, and pixels of shape (slow, fast). fabio's own
        errors pass through (this reader checks files nanobrag wrote; it is not a user input).
    """
    import fabio

    image = fabio.open(os.fspath(path))
    contents = image.header.get("_array_data.header_contents", "")
    header = {}
    for line in contents.replace("\r", "").split("\n"):
        text = line.lstrip("# ").strip()
        key, _, rest = text.partition(" ")
        if key:
            header[key] = rest
    return header, np.asarray(image.data)
