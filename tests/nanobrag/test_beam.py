"""nanobrag.beam: sources (divergence x dispersion, source files), polarization, fluence, water."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nanobrag.beam import divergence_grid, file_sources, generated_sources, polarization_factor
from nanobrag.config import BeamConfig
from nanobrag.errors import InputError
from nanobrag.sampling import DIVERGENCE, complete_sampling


def test_round_divergence_trims_corners():
    s = complete_sampling(2e-3, None, 3, DIVERGENCE)
    kept = divergence_grid(s, s, round_div=True)
    assert len(kept) == 5 and (0, 0) not in kept
    assert len(divergence_grid(s, s, round_div=False)) == 9


def test_generated_sources_are_unit_vectors_around_the_beam(dtype, device, rtol):
    beam = torch.tensor([1.0, 0.0, 0.0], dtype=dtype, device=device)
    polar = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=device)
    div = complete_sampling(2e-3, None, 3, DIVERGENCE)
    disp = complete_sampling(0.02, None, 3, DIVERGENCE)
    wavelength = torch.tensor(1e-10, dtype=dtype, device=device)
    sources = generated_sources(BeamConfig(), beam, polar, wavelength, div, div, disp)
    assert sources.count == 5 * 3 and sources.incident.dtype == dtype
    assert torch.allclose(sources.incident.norm(dim=1), torch.ones(15, dtype=dtype, device=device), rtol=rtol)
    assert float((sources.incident @ beam).min()) > 0.999998  # within the 1 mrad half-range
    assert sorted(set(sources.wavelength.tolist())) == pytest.approx([0.99e-10, 1e-10, 1.01e-10], rel=10 * rtol)


def test_unpolarised_factor_is_half_of_one_plus_cos_squared(dtype, device, rtol):
    incident = torch.tensor([[1.0, 0.0, 0.0]], dtype=dtype, device=device)
    diffracted = torch.tensor([[0.8, 0.6, 0.0], [0.8, 0.0, 0.6]], dtype=dtype, device=device)
    polar = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=device)
    kahn = torch.tensor(0.0, dtype=dtype, device=device)
    factor = polarization_factor(kahn, incident, diffracted, polar)
    assert factor.tolist() == pytest.approx([0.82, 0.82], rel=10 * rtol)
    # Fully polarised along z: scattering in the polarization plane loses cos^2 2theta.
    polarised = polarization_factor(torch.ones_like(kahn), incident, diffracted, polar)
    assert polarised.tolist() == pytest.approx([1.0, 0.64], rel=10 * rtol)


def test_a_source_at_the_crystal_is_refused():
    table = np.array([[0.0, 0.0, 0.0, 1.0, np.nan]])
    beam = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    with pytest.raises(InputError, match=r"sources\.txt: source 1 lies at the crystal"):
        file_sources(table, beam, torch.tensor(1e-10, dtype=torch.float64), "sources.txt")
