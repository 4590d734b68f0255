"""nanobrag.setup: sampled beams and crystals resolved into tensors (mosaic, divergence, dispersion, phi, misset)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nanobrag import BeamConfig, CrystalConfig, DetectorConfig, SimulationConfig, StructureConfig, build_setup, simulate
from nanobrag.flags import parse_flags


def sampled_config(**beam) -> SimulationConfig:
    beam_cfg = dict(
        wavelength_A=1.0,
        hdivrange_mrad=2.0,
        vdivrange_mrad=2.0,
        hdivsteps=3,
        vdivsteps=3,
        dispersion_pct=2.0,
        dispsteps=3,
    )
    beam_cfg.update(beam)
    return SimulationConfig(
        crystal=CrystalConfig(
            cell=(70, 80, 90, 75, 85, 95),
            misset_deg=(10, 20, 30),
            N=(5, 5, 5),
            mosaic_spread_deg=0.5,
            mosaic_domains=4,
            mosaic_seed=42,
        ),
        structure=StructureConfig(default_F=100),
        detector=DetectorConfig(distance_mm=100, fpixels=16, spixels=16, pixel_mm=2.0, oversample=2),
        beam=BeamConfig(**beam_cfg),
    )


@pytest.mark.parametrize(
    "name, value",
    [("mosaic_spread", 0.5), ("wavelength", 1.0), ("hdivrange", 2.0), ("vdivrange", 2.0), ("dispersion", 2.0)],
)
def test_image_sum_gradient_matches_central_differences(name, value):
    cfg = sampled_config()
    param = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    simulate(cfg, params={name: param}).sum().backward()
    step = 1e-5 * value

    def loss(v: float) -> float:
        return float(simulate(cfg, params={name: torch.tensor(v, dtype=torch.float64)}).sum())

    numeric = (loss(value + step) - loss(value - step)) / (2 * step)
    assert param.grad.item() == pytest.approx(numeric, rel=1e-4)
    assert numeric != 0.0


def test_mosaic_spread_parameter_chooses_the_domains_like_the_configured_spread():
    configured = sampled_config()
    configured.crystal.mosaic_domains = None  # nanoBragg's automatic count: 10 with a spread
    unmosaic = configured.model_copy(deep=True)
    unmosaic.crystal.mosaic_spread_deg = None
    spread = torch.tensor(0.5, dtype=torch.float64)
    assert build_setup(unmosaic, params={"mosaic_spread": spread}).orientations.shape[1] == 10
    assert torch.allclose(simulate(unmosaic, params={"mosaic_spread": spread}), simulate(configured), rtol=1e-12)


def test_mosaic_domains_are_seeded():
    cfg = sampled_config()
    same = simulate(cfg)
    assert torch.equal(same, simulate(cfg))
    cfg.crystal.mosaic_seed = 43
    assert not torch.allclose(same, simulate(cfg))


def test_square_divergence_keeps_the_corners():
    round_div = build_setup(sampled_config(dispsteps=1, dispersion_pct=0.0))
    square = build_setup(sampled_config(dispsteps=1, dispersion_pct=0.0, round_div=False))
    assert (round_div.sources.count, square.sources.count) == (5, 9)


def test_sourcefile_reproduces_the_generated_sources(tmp_path):
    cfg = sampled_config(dispersion_pct=0.0, dispsteps=1)
    generated = build_setup(cfg)
    toward_source = -10.0 * generated.sources.incident.numpy()  # positions 10 m upstream, as nanoBragg
    wavelengths = generated.sources.wavelength.numpy()
    rows = [f"{x:.17g} {y:.17g} {z:.17g} 1.0 {lam:.17g}" for (x, y, z), lam in zip(toward_source, wavelengths)]
    source_file = tmp_path / "sources.txt"
    source_file.write_text("\n".join(rows) + "\n")
    from_file = cfg.model_copy(deep=True)
    from_file.beam.sourcefile = source_file
    assert torch.allclose(simulate(from_file), simulate(cfg), rtol=1e-10)


# A small triclinic crystal on a 16x16 detector, one sub-pixel: the base of the rotation tests below.
SMALL_TRICLINIC = "-cell 70 80 90 75 85 95 -default_F 100 -N 5 -detpixels 16 -pixel 2 -oversample 1".split()


def test_single_phi_step_equals_the_same_misset():
    """Rotating by phi about the MOSFLM spindle (z) is the same crystal as a misset about z."""
    spun = parse_flags([*SMALL_TRICLINIC, "-phi", "12"])[0]
    turned = parse_flags([*SMALL_TRICLINIC, "-misset", "0", "0", "12"])[0]
    assert torch.allclose(simulate(spun), simulate(turned), rtol=1e-9)


def test_custom_spindle_axis_changes_the_rotation():
    base = [*SMALL_TRICLINIC, "-phi", "12"]
    about_z = simulate(parse_flags(base)[0])
    about_y = simulate(parse_flags(base + ["-spindle_axis", "0", "1", "0"])[0])
    assert not torch.allclose(about_z, about_y)


def test_random_misset_is_reproducible_from_its_seed():
    base = [*SMALL_TRICLINIC, "-misset", "random"]
    first = simulate(parse_flags(base + ["-misset_seed", "5"])[0])
    assert torch.equal(first, simulate(parse_flags(base + ["-misset_seed", "5"])[0]))
    assert not torch.allclose(first, simulate(parse_flags(base + ["-misset_seed", "6"])[0]))
    assert np.isfinite(first.numpy()).all() and float(first.sum()) > 0
