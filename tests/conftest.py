"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only reference folder: $NANOBRAG_SHARED, <repo root>/../shared, or /work/shared."""
    candidates = [Path(os.environ["NANOBRAG_SHARED"])] if os.environ.get("NANOBRAG_SHARED") else []
    candidates += [Path(__file__).resolve().parents[1].parent / "shared", Path("/work/shared")]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    pytest.skip("reference data not found: set NANOBRAG_SHARED or put shared/ beside the repository "
                f"(looked in {', '.join(map(str, candidates))})")
