"""Unit behaviour of the physics core, independent of the command line."""

from __future__ import annotations

import pytest
import torch

from nanobrag import (
    BeamConfig,
    CrystalConfig,
    DetectorConfig,
    InputError,
    SimulationConfig,
    StructureConfig,
    build_setup,
    compiled,
    render,
    simulate,
)
from nanobrag.structure import StructureFactors


def small_config(**detector) -> SimulationConfig:
    det = dict(distance_mm=100, fpixels=24, spixels=20, pixel_mm=2.0, oversample=2)
    det.update(detector)
    return SimulationConfig(
        crystal=CrystalConfig(cell=(70, 80, 90, 75, 85, 95), misset_deg=(10, 20, 30), N=(5, 5, 5)),
        structure=StructureConfig(default_F=100),
        detector=DetectorConfig(**det),
        beam=BeamConfig(wavelength_A=1.0),
    )


class TestRenderer:
    def test_chunking_does_not_change_the_image(self):
        setup = build_setup(small_config())
        whole = render(setup)
        tiny = render(setup, memory_budget=1)  # one pixel per chunk
        assert torch.allclose(whole, tiny, rtol=1e-12, atol=0)

    def test_chunked_gradients_match_unchunked(self):
        """Several chunks are checkpointed (recomputed in backward); the gradient must not change."""
        grads = []
        for budget in (None, 1):
            cell_a = torch.tensor(70.0, dtype=torch.float64, requires_grad=True)
            render(build_setup(small_config(), params={"cell_a": cell_a}), memory_budget=budget).sum().backward()
            grads.append(cell_a.grad.item())
        assert grads[0] != 0.0 and grads[1] == pytest.approx(grads[0], rel=1e-12)

    def test_roi_renders_only_inside(self):
        full = simulate(small_config())
        part = simulate(small_config(roi=(3, 10, 5, 12)))
        assert torch.equal(part[5:13, 3:11], full[5:13, 3:11])
        mask = torch.ones_like(part, dtype=torch.bool)
        mask[5:13, 3:11] = False
        assert part[mask].abs().sum() == 0

    def test_float32_agrees_with_float64(self):
        f64 = simulate(small_config(), dtype=torch.float64)
        f32 = simulate(small_config(), dtype=torch.float32)
        assert f32.dtype == torch.float32
        corr = torch.corrcoef(torch.stack([f64.flatten(), f32.double().flatten()]))[0, 1]
        assert corr > 0.99999

    def test_dtype_and_device_follow_parameter_tensors(self):
        distance = torch.tensor(100.0, dtype=torch.float32)
        image = simulate(small_config(), params={"distance": distance})
        assert image.dtype == torch.float32 and image.device == distance.device

    def test_automatic_oversampling_uses_the_wavelength_parameter(self):
        # The automatic choice must see the same wavelength as the physics, as distance and cell do.
        config = small_config(oversample=None, pixel_mm=0.5)
        config.crystal.N = (20.0, 20.0, 20.0)
        by_parameter = build_setup(config, params={"wavelength": torch.tensor(0.5, dtype=torch.float64)})
        config.beam.wavelength_A = 0.5
        assert by_parameter.oversample == build_setup(config).oversample > 1

    def test_unknown_parameter_is_an_input_error(self):
        with pytest.raises(InputError, match="unknown parameter"):
            simulate(small_config(), params={"cell_z": torch.tensor(1.0)})

    def test_intensity_scales_with_default_F_squared(self):
        base = simulate(small_config())
        doubled = small_config()
        doubled.structure.default_F = 200
        assert torch.allclose(simulate(doubled), 4 * base, rtol=1e-12)


class TestInterpolationSwitch:
    """nanoBragg turns tricubic interpolation off for good at the first out-of-range evaluation."""

    def _setup(self, interpolate: bool):
        setup = build_setup(small_config(fpixels=6, spixels=6, pixel_mm=4.0))
        grid = torch.arange(9 * 9 * 9, dtype=torch.float64).reshape(9, 9, 9) % 7 + 10.0
        setup.structure = StructureFactors(
            default_F=setup.structure.default_F, table=grid, lower=(-4, -4, -4), interpolate=interpolate
        )
        return setup

    def test_out_of_range_switches_to_nearest_for_the_rest(self):
        # eager both: a compiled kernel in the user's cache may serve one of them, equal only to round-off
        nearest = render(self._setup(False), kernel="eager")
        interpolated = render(self._setup(True), kernel="eager")
        # Pixel (0, 0) sees indices far outside the +-4 table, so from its first evaluation on the
        # run falls back to the nearest reflection: identical images.
        assert torch.equal(nearest, interpolated)

    def test_interpolation_used_while_in_range(self):
        setup = self._setup(True)
        wide = torch.rand(121, 121, 121, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 1
        setup.structure = StructureFactors(
            default_F=setup.structure.default_F, table=wide, lower=(-60, -60, -60), interpolate=True
        )
        interpolated = render(setup)
        setup.structure.interpolate = False
        assert not torch.allclose(interpolated, render(setup))

    def test_checkpointed_chunks_replay_the_switch_they_saw(self):
        # The beam sits at the top edge: the first rows stay inside the table, later rows leave
        # it, so the switch turns off after the first chunks. Backward recomputes each chunk
        # (checkpointing) and must do so with the switch as it was when the chunk was rendered.
        cfg = SimulationConfig(
            crystal=CrystalConfig(cell=(30, 30, 30, 90, 90, 90), misset_deg=(5, 7, 9), N=(2, 2, 2)),
            structure=StructureConfig(default_F=100),
            detector=DetectorConfig(
                distance_mm=100, fpixels=8, spixels=48, pixel_mm=2.0, oversample=1, Xbeam_mm=1.0, Ybeam_mm=8.0
            ),
        )
        table = torch.arange(17**3, dtype=torch.float64).reshape(17, 17, 17) % 11 + 10.0

        def image_and_gradient(memory_budget):
            cell_a = torch.tensor(30.0, dtype=torch.float64, requires_grad=True)
            setup = build_setup(cfg, params={"cell_a": cell_a})
            setup.structure = StructureFactors(
                default_F=setup.structure.default_F, table=table, lower=(-8, -8, -8), interpolate=True
            )
            image = render(setup, memory_budget=memory_budget)
            image.sum().backward()
            return image.detach(), cell_a.grad

        whole, whole_grad = image_and_gradient(None)
        chunked, chunked_grad = image_and_gradient(1)
        assert torch.allclose(chunked, whole, rtol=1e-12, atol=0)
        assert chunked_grad == pytest.approx(float(whole_grad), rel=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    cfg = small_config()
    cfg.crystal.mosaic_spread_deg, cfg.crystal.mosaic_domains = 0.3, 3
    cpu = simulate(cfg, dtype=torch.float64)
    distance = torch.tensor(100.0, dtype=torch.float64, device="cuda", requires_grad=True)
    gpu = simulate(cfg, params={"distance": distance})
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, rtol=1e-10)
    gpu.sum().backward()
    assert distance.grad is not None and torch.isfinite(distance.grad)


@pytest.mark.slow
def test_packaged_kernel_matches_eager(monkeypatch, tmp_path):
    """The AOTInductor package of a variant gives the eager image; it is built once and then loaded."""
    monkeypatch.delenv("NANOBRAGG_DISABLE_COMPILE", raising=False)  # gradient modules set it globally
    monkeypatch.setenv("NANOBRAG_CACHE_DIR", str(tmp_path))
    setup = build_setup(small_config(), dtype=torch.float32)
    with torch.no_grad():
        eager = render(setup, kernel="eager")
        fused = render(setup, kernel="fused")
    assert len(list(tmp_path.rglob("*.pt2"))) == 1
    assert torch.allclose(fused, eager, rtol=1e-5, atol=1e-6 * float(eager.max()))
    # Chunks of one row each (1600 bytes: 25 pixels) and of several rows: the index arrays the
    # kernel reads must be dense whatever the chunking.
    for budget in (1600, 2**16):
        with torch.no_grad():
            chunked = render(setup, kernel="fused", memory_budget=budget)
        assert torch.allclose(chunked, eager, rtol=1e-5, atol=1e-6 * float(eager.max())), budget
    monkeypatch.setattr(compiled, "build_package", _refuse_to_build)
    other = small_config()
    other.crystal.cell = (72, 80, 90, 75, 85, 95)
    with torch.no_grad():
        again = render(build_setup(other, dtype=torch.float32), kernel="auto")
    assert again.shape == eager.shape and not torch.equal(again, eager)  # new cell, same cached kernel


@pytest.mark.slow
def test_fused_gradients_equal_eager_gradients(monkeypatch):
    monkeypatch.delenv("NANOBRAGG_DISABLE_COMPILE", raising=False)
    grads = {}
    for kernel in ("eager", "fused"):
        cell = {name: torch.tensor(value, dtype=torch.float64, requires_grad=True) for name, value in
                (("cell_a", 70.0), ("cell_gamma", 95.0), ("distance", 100.0))}  # fmt: skip
        render(build_setup(small_config(), params=cell), kernel=kernel).sum().backward()
        grads[kernel] = [float(t.grad) for t in cell.values()]
    assert grads["fused"] == pytest.approx(grads["eager"], rel=1e-9)


def _refuse_to_build(*args, **kwargs):
    raise AssertionError("no kernel may be built here")


def test_disable_compile_guard_keeps_everything_eager(monkeypatch):
    monkeypatch.setenv("NANOBRAGG_DISABLE_COMPILE", "1")
    monkeypatch.setattr(compiled, "build_package", _refuse_to_build)
    monkeypatch.setattr(compiled, "in_process_compiled", _refuse_to_build)
    setup = build_setup(small_config())
    assert torch.equal(render(setup, kernel="fused"), render(setup, kernel="eager"))
