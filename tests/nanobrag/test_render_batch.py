"""A leading batch axis: render_batch of several setups equals their single renders, values and gradients."""

from __future__ import annotations

import pytest
import torch

from nanobrag import InputError, build_setup, build_setups, render, render_batch
from nanobrag.flags import parse_flags

# A small triclinic crystal on a 16x16 detector, with sub-pixels, mosaic domains and two phi steps.
BASE = (
    "-cell 70 80 90 85 95 105 -misset 10 20 30 -default_F 100 -lambda 1 -N 3 -distance 80"
    " -detpixels 16 -pixel 0.6 -oversample 2 -mosaic 0.5 -mosaic_dom 3 -mosaic_seed 7 -phi 0 -osc 1 -phisteps 2"
).split()


def single(config, dtype=torch.float64, **params: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One eager render and the leaf tensors of its parameters."""
    leaves = {name: value.detach().clone().requires_grad_() for name, value in params.items()}
    return render(build_setup(config, params=leaves, dtype=dtype), kernel="eager"), leaves


def test_four_cells_equal_four_single_renders_with_their_gradients():
    config = parse_flags(BASE)[0]
    cells = {
        "cell_a": torch.tensor([70.0, 71.5, 68.0, 74.0], dtype=torch.float64, requires_grad=True),
        "cell_b": torch.tensor([80.0, 79.0, 83.0, 80.5], dtype=torch.float64, requires_grad=True),
        "cell_gamma": torch.tensor([105.0, 103.0, 101.0, 106.0], dtype=torch.float64, requires_grad=True),
    }
    images = render_batch(build_setups(config, params=cells))
    assert images.shape == (4, 16, 16)
    weights = torch.rand(16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (images * weights).sum().backward()
    for i in range(4):
        image, leaves = single(config, **{name: value[i] for name, value in cells.items()})
        assert image.abs().max() > 1.0  # real spots, not an empty image
        torch.testing.assert_close(images[i], image, rtol=1e-12, atol=1e-12 * float(image.detach().abs().max()))
        (image * weights).sum().backward()
        for name, value in cells.items():
            assert leaves[name].grad != 0
            torch.testing.assert_close(value.grad[i], leaves[name].grad, rtol=1e-10, atol=0)
    # the images really differ: each entry rendered its own cell
    assert not torch.allclose(images[0], images[1])


FLAG_LINES = {
    "sources_and_polarization": "-hdivrange 1 -hdivsteps 2 -dispersion 1 -dispsteps 2 -polar 0.9",
    "absorbing_sensor": "-detector_abs 320 -detector_thick 450 -detector_thicksteps 3",
    "curved_point_pixel": "-curved_det -point_pixel",
    "shape_gauss_water": "-gauss_xtal -water 50",
    "dmin_rotated_detector": "-dmin 3 -detector_rotx 5 -twotheta 10",
    "corrected_physics": "-corrected -round_xtal",
}


@pytest.mark.parametrize("extra", FLAG_LINES.values(), ids=FLAG_LINES.keys())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_detector_settings_batch_equals_single_renders(extra, dtype):
    config = parse_flags([*BASE, *extra.split(), "-roi", "4", "11", "4", "11"])[0]
    distance = torch.tensor([80.0, 84.0, 77.0], dtype=dtype, requires_grad=True)
    images = render_batch(build_setups(config, params={"distance": distance}, dtype=dtype))
    images.sum().backward()
    tolerance = dict(rtol=1e-12, atol=0) if dtype == torch.float64 else dict(rtol=2e-5, atol=0)
    for i in range(3):
        image, leaves = single(config, dtype, distance=distance[i])
        assert image.sum() > 0
        torch.testing.assert_close(images[i], image, atol=tolerance["rtol"] * float(image.detach().abs().max()), rtol=0)
        image.sum().backward()
        torch.testing.assert_close(distance.grad[i], leaves["distance"].grad, rtol=100 * tolerance["rtol"], atol=0)


def test_run_wide_state_renders_on_its_own(shared_dir, tmp_path, monkeypatch):
    """Sticky tricubic interpolation can switch off between chunks: each such setup keeps its own run state."""
    monkeypatch.chdir(tmp_path)  # nanoBragg caches the table as ./Fdump.bin, which later runs would read
    hkl = shared_dir / "golden" / "dense.hkl"
    line = f"-cell 50 60 70 90 90 90 -hkl {hkl} -lambda 1 -N 2 -interpolate -distance 100 -detpixels 24 -pixel 3"
    config = parse_flags(line.split())[0]
    cell = torch.tensor([50.0, 50.5], dtype=torch.float64)
    images = render_batch(build_setups(config, params={"cell_a": cell}), memory_budget=2**16)
    for i in range(2):
        torch.testing.assert_close(images[i], single(config, cell_a=cell[i])[0], rtol=1e-12, atol=0)


def test_mixed_configurations_share_one_batch():
    """One configuration per entry: different crystal shapes take different kernels, in order."""
    configs = [parse_flags([*BASE, *extra.split()])[0] for extra in ("-round_xtal", "", "-tophat_spots")]
    images = render_batch(build_setups(configs))
    for i, config in enumerate(configs):
        torch.testing.assert_close(images[i], single(config)[0], rtol=1e-12, atol=0)


def test_setups_that_cannot_share_a_batch_are_refused():
    small, large = (parse_flags([*BASE, "-detpixels", n])[0] for n in ("16", "20"))
    with pytest.raises(ValueError, match=r"setup 1 differs from setup 0 in detector size"):
        render_batch(build_setups([small, large]))
    with pytest.raises(ValueError, match="at least one setup"):
        render_batch([])


def test_batch_sizes_must_agree():
    config = parse_flags(BASE)[0]
    with pytest.raises(InputError, match=r"batch sizes disagree \(cell_a: 2, distance: 3\)"):
        build_setups(config, params={"cell_a": torch.ones(2) * 70, "distance": torch.ones(3) * 80})
    with pytest.raises(InputError, match="cell_a has more dimensions"):
        build_setups(config, params={"cell_a": torch.ones(2, 2) * 70})
    shared = build_setups(config, params={"cell_a": torch.tensor(71.0), "distance": torch.tensor([80.0, 81.0])})
    assert [float(s.lattice.real[0].norm()) for s in shared] == pytest.approx([71.0, 71.0])  # shared (A)
    assert [float(s.geometry.distance) for s in shared] == pytest.approx([0.080, 0.081])  # one each (m)
