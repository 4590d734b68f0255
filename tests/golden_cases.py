"""Helpers for tests that read the nanoBragg C reference cases in shared/golden."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np


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
