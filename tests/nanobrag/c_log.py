"""Read the derived quantities the nanoBragg C program prints (the golden cases' .log files)."""

from __future__ import annotations

import re
from pathlib import Path

_NUMBER = r"[-+0-9.eE]+"


def _floats(text: str) -> list[float]:
    return [float(x) for x in re.findall(_NUMBER, text)]


def read_c_log(path: Path) -> dict:
    """Geometry, cell and sampling values from a nanoBragg printout, SI units as printed."""
    lines = path.read_text().splitlines()
    out: dict = {}
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("real-space cell vectors"):
            rows = [_floats(lines[i + k].split(":", 1)[1]) for k in (2, 3, 4)]
            out["real"] = [[rows[r][c] for r in range(3)] for c in range(3)]  # rows a, b, c
        elif s.startswith("reciprocal-space cell vectors"):
            rows = [_floats(lines[i + k].split(":", 1)[1]) for k in (2, 3, 4)]
            out["reciprocal"] = [[rows[r][c] for r in range(3)] for c in range(3)]
        elif s.startswith("distance="):
            out["distance"] = float(re.search(r"distance=(" + _NUMBER + ")", s).group(1))
        elif s.startswith(("Fbeam=", "Fclose=", "Xbeam=")):
            for key, val in re.findall(r"(\w+)=(" + _NUMBER + ")", s):
                out[key] = float(val)
        elif s.startswith("DIRECTION_OF_DETECTOR_X-AXIS="):
            out["fdet"] = _floats(s.split("=", 1)[1])
        elif s.startswith("DIRECTION_OF_DETECTOR_Y-AXIS="):
            out["sdet"] = _floats(s.split("=", 1)[1])
        elif s.startswith("DIRECTION_OF_DETECTOR_Z-AXIS="):
            out["odet"] = _floats(s.split("=", 1)[1])
        elif s.startswith("dials origin="):
            out["dials_origin"] = _floats(s.split("=", 1)[1])
        elif re.match(r"\d+ sources$", s):
            out["sources"] = int(s.split()[0])
        elif re.match(r"\d+ mosaic domains over", s):
            out["mosaic_domains"] = int(s.split()[0])
        elif re.match(r"\d+ phi steps", s):
            out["phisteps"] = int(s.split()[0])
        elif re.match(r"\d+x\d+ pixel oversample steps", s):
            out["oversample"] = int(s.split("x")[0])
        elif s.startswith("sensor is"):
            m = re.search(r"in (\d+) layers", s)
            out["thicksteps"] = int(m.group(1))
        elif s.startswith("max_I ="):
            out["max_I"] = float(s.split()[2])
    return out
