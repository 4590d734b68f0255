"""Helpers for tests that read the nanoBragg C reference cases in shared/golden."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from nanobrag.io.smv import SMVHeader

# Output flags for case smv_int_noise, and the golden file each output must equal byte for byte.
SMV_CASE_OUTPUTS = {"f.bin": "float.bin", "i.img": "int.img", "n.img": "noise.img"}
SMV_CASE_OUTPUT_ARGS = ["-floatfile", "f.bin", "-intfile", "i.img", "-noisefile", "n.img", "-nopgm"]


def assert_smv_case_outputs_identical(shared_dir: Path, folder: Path) -> None:
    for mine, golden in SMV_CASE_OUTPUTS.items():
        expected = (shared_dir / "golden" / f"smv_int_noise.{golden}").read_bytes()
        assert (folder / mine).read_bytes() == expected, f"{mine} differs from smv_int_noise.{golden}"


def case(shared_dir: Path, name: str) -> dict:
    cases = json.loads((shared_dir / "golden" / "cases.json").read_text())
    return next(c for c in cases if c["name"] == name)


def float_image(shared_dir: Path, name: str) -> np.ndarray:
    entry = case(shared_dir, name)
    data = np.fromfile(shared_dir / "golden" / entry["files"]["float"], dtype="<f4")
    return data.reshape(entry["shape"])


def log_values(shared_dir: Path, name: str, pattern: str) -> tuple[str, ...]:
    """The groups of the first match of ``pattern`` in the C program's printout for case ``name``."""
    text = (shared_dir / "golden" / f"{name}.log").read_text()
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {name}.log"
    return match.groups()


def smv_header_from_log(shared_dir: Path, name: str) -> SMVHeader:
    """The SMV header quantities of an untilted-detector case, read from the C program's printout."""

    def numbers(pattern: str) -> list[float]:
        return [float(v) for v in log_values(shared_dir, name, pattern)]

    Xbeam, Ybeam = numbers(r"Xbeam=(\S+) Ybeam=(\S+)")
    Fbeam, Sbeam = numbers(r"Fbeam=(\S+) Sbeam=(\S+)")
    Fclose, Sclose = numbers(r"Fclose=(\S+) Sclose=(\S+)")
    distance, _, detsize_s, pixel_size, fpixels, spixels = numbers(
        r"distance=(\S+) detsize=(\S+)x(\S+)  pixel=(\S+) meters \((\d+)x(\d+) pixels"
    )
    (lambda0,) = numbers(r"lambda0 = (\S+)")
    return SMVHeader(
        fpixels=int(fpixels),
        spixels=int(spixels),
        pixel_size=pixel_size,
        distance=distance,
        lambda0=lambda0,
        Xbeam=Xbeam,
        Ybeam=Ybeam,
        Fbeam=Fbeam,
        Sbeam=Sbeam,
        detsize_s=detsize_s,
        dials_origin=tuple(numbers(r"dials origin= (\S+) (\S+) (\S+)")),
        ORGX=Fclose / pixel_size + 0.5,  # nanoBragg's definition of the XDS origin
        ORGY=Sclose / pixel_size + 0.5,
        close_distance=distance,  # untilted detector: close distance = distance
        phi0=0.0,
        osc=0.0,
        twotheta=0.0,
    )
