"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_candidates() -> list[Path]:
    candidates = []
    if os.environ.get("NANOBRAG_SHARED"):
        candidates.append(Path(os.environ["NANOBRAG_SHARED"]))
    candidates += [REPO / ".." / "shared", Path("/work/shared")]
    return candidates


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's read-only reference folder: $NANOBRAG_SHARED, <repo>/../shared or
    /work/shared, the first that exists; the test is skipped when none does."""
    for candidate in _shared_candidates():
        if candidate.is_dir():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in _shared_candidates())
    pytest.skip(f"shared reference folder not found (tried {tried}); set NANOBRAG_SHARED")
