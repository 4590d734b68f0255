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


# The device x dtype matrix of the physics and gradient tests. torch is imported when a fixture is
# used, not when the conftest loads, so planctl's tests do not pay for it.
DTYPES = ("float32", "float64")
DEVICES = ("cpu", "cuda")


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest):
    """Each device the physics runs on; cuda is skipped, with its reason, where there is none."""
    import torch

    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    return torch.device(request.param)


@pytest.fixture(params=DTYPES)
def dtype(request: pytest.FixtureRequest):
    """float32 and float64: every tensor of the physics takes it from the inputs."""
    import torch

    return getattr(torch, request.param)


@pytest.fixture
def rtol(dtype) -> float:
    """Relative tolerance, in ``dtype``, for results that float64 gets to round-off.

    float32 has a 6e-8 unit round-off; sums over thousands of evaluations and the cancellations of a
    lattice transform near a Bragg peak lose about two more digits, so 1e-5 is what float32 can promise.
    """
    import torch

    return 1e-5 if dtype == torch.float32 else 1e-12
