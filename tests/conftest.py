"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_shared_dir() -> Path | None:
    """../shared beside the checkout ($NANOBRAG_SHARED first, /work/shared last)."""
    candidates = [os.environ.get("NANOBRAG_SHARED"), REPO.parent / "shared", Path("/work/shared")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "golden" / "cases.json").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    found = find_shared_dir()
    if found is None:
        pytest.skip("reference data not found: set NANOBRAG_SHARED or place shared/ beside the repository")
    return found
