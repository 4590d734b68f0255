"""nanoBragg's quirks: each one as the C program has it (the default) and as ``-corrected`` fixes it.

Every field of :class:`nanobrag.compat.Quirks` has a test of both sides here, and docs/physics.md
describes each; a command line that touches no quirk gives the same image either way.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from nanobrag import build_setup, render, simulate
from nanobrag.beam import R_E_SQUARED, water_background
from nanobrag.compat import Quirks, stale_phi_angles
from nanobrag.detector import detector_frame, pixel_positions, solid_angle
from nanobrag.flags import parse_flags
from nanobrag.io.smv import SMVHeader, smv_bytes
from nanobrag.kernel import running_product
from nanobrag.physics import lattice_factor
from nanobrag.trace import pixel_photons, trace_pixel

TRICLINIC = "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 5 -lambda 1 -distance 100"
# CUSTOM geometry (MOSFLM's axes) so that -Xbeam/-Ybeam place the beam exactly, whatever the pixel size.
CUSTOM = "-fdet_vector 0 0 1"


def positions_by_pixel(geom, slow, fast, oversample, depths, curved):
    """Sub-pixel positions as (pixels, layers, sub-pixels, 3) for these tests' indexing."""
    sub_index = torch.arange(oversample, dtype=torch.int32)
    frame = detector_frame(geom)
    return pixel_positions(frame, slow.int(), fast.int(), sub_index, depths, curved, geom.curved_lab_axes).permute(
        3, 1, 2, 0
    )


def config(command: str, corrected: bool = False):
    return parse_flags(command.split() + (["-corrected"] if corrected else []))[0]


def image(command: str, corrected: bool = False) -> torch.Tensor:
    return simulate(config(command, corrected), dtype=torch.float64)


def test_every_quirk_is_documented_and_switched_by_corrected():
    physics = (Path(__file__).resolve().parents[2] / "docs" / "physics.md").read_text()
    names = [field.name for field in dataclasses.fields(Quirks)]
    assert all(f"`{name}`" in physics for name in names), [n for n in names if f"`{n}`" not in physics]
    assert all(dataclasses.astuple(Quirks.nanobragg())) and not any(dataclasses.astuple(Quirks.corrected()))
    assert build_setup(config(TRICLINIC, corrected=True)).quirks == Quirks.corrected()
    assert build_setup(config(TRICLINIC)).quirks == Quirks.nanobragg()


def test_corrected_changes_nothing_where_no_quirk_acts():
    command = f"{TRICLINIC} -detpixels 16 -pixel 1 -oversample 1 -phi 3 -osc 2 -phisteps 2 -polar 0.9"
    assert torch.equal(image(command), image(command, corrected=True))


# -- stale phi 0 ---------------------------------------------------------------------------------


def test_stale_phi_angles():
    d = 0.01
    assert stale_phi_angles(0.0, d, 3) == ([2 * d, d, 2 * d], [0.0, d, 2 * d])
    assert stale_phi_angles(-d, d, 3) == ([-d, -d, d], [-d, -d, d])  # step 1 keeps step 0's rotation
    assert stale_phi_angles(0.0, 0.0, 2) == ([0.0, 0.0], [0.0, 0.0])
    assert stale_phi_angles(0.1, d, 2) == ([0.1, 0.1 + d], [0.1, 0.1 + d])


def test_stale_phi0_orientation_both_sides():
    """-phi 0 over three steps: nanoBragg uses the last step's orientation again at step 0, except
    in the first pixel; -corrected uses phi = 0."""
    grid = f"{TRICLINIC} -detpixels 12 -pixel 1.5 -oversample 1"
    single = {phi: image(f"{grid} -phi {phi} -phisteps 1") for phi in (0, 1, 2)}
    swept = f"{grid} -phi 0 -osc 3 -phisteps 3"
    nanobragg, corrected = image(swept), image(swept, corrected=True)
    as_c = (single[2] + single[1] + single[2]) / 3
    physical = (single[0] + single[1] + single[2]) / 3
    torch.testing.assert_close(corrected, physical, rtol=1e-12, atol=0)
    torch.testing.assert_close(nanobragg.flatten()[1:], as_c.flatten()[1:], rtol=1e-12, atol=0)
    assert float(nanobragg[0, 0]) == pytest.approx(float(physical[0, 0]), rel=1e-12)  # the first pixel
    assert not torch.allclose(nanobragg, corrected)


def test_stale_phi0_first_sweep_is_one_sub_pixel():
    """With sub-pixels, only the first sub-pixel's sweep of the first pixel sees phi = 0 (C's loop order)."""
    command = f"{TRICLINIC} -detpixels 6 -pixel 1.5 -oversample 2 -phi 0 -osc 2 -phisteps 2"
    setup = build_setup(config(command))
    assert setup.first_evaluation_orientations is not None
    rendered = render(setup)
    without_first = render(dataclasses.replace(setup, first_evaluation_orientations=None))
    torch.testing.assert_close(rendered.flatten()[1:], without_first.flatten()[1:], rtol=1e-12, atol=0)
    assert float(rendered[0, 0]) != float(without_first[0, 0])
    trace = trace_pixel(setup, 0, 0, float(rendered[0, 0]))  # trace.py patches the first sweep on its own
    assert pixel_photons(trace, setup) == pytest.approx(float(rendered[0, 0]), rel=1e-12)


# -- -pix0_vector --------------------------------------------------------------------------------


def test_pix0_vector_both_sides():
    grid = f"{TRICLINIC} -detpixels 32 -pixel 3.2 -oversample 1"
    # nanoBragg: the vector selects CUSTOM geometry and is then overwritten, whatever it says.
    custom = image(f"{grid} {CUSTOM}")
    assert torch.equal(image(f"{grid} -pix0_vector 0.1 0.06 -0.0544"), custom)
    assert torch.equal(image(f"{grid} -pix0_vector 5 5 5"), custom)
    # -corrected: the origin is honoured; MOSFLM's own origin given explicitly gives MOSFLM's image.
    mosflm = image(grid)
    torch.testing.assert_close(image(f"{grid} -pix0_vector 0.1 0.0544 -0.0544", True), mosflm, rtol=1e-10, atol=0)
    assert not torch.allclose(image(f"{grid} -pix0_vector 0.1 0.06 -0.0544", True), mosflm)


# -- curved detector ------------------------------------------------------------------------------


def test_curved_detector_both_sides():
    command = f"-cell 70 80 90 75 85 95 -default_F 1 {CUSTOM} -detpixels 4 -pixel 10 -Xbeam 20 -Ybeam 20"
    command += " -oversample 1 -curved_det -nopgm"
    index = torch.arange(4)
    slow, fast = index.repeat_interleave(4), index.repeat(4)
    depth = torch.zeros(1, dtype=torch.float64)

    def positions(corrected: bool) -> torch.Tensor:
        geom = build_setup(config(command, corrected)).geometry
        return positions_by_pixel(geom, slow, fast, 1, depth, True)[:, 0, 0]

    bent_c, bent = positions(False), positions(True)
    # Both put every pixel at the distance from the sample.
    torch.testing.assert_close(bent.norm(dim=-1), torch.full((16,), 0.1, dtype=torch.float64))
    torch.testing.assert_close(bent_c.norm(dim=-1), torch.full((16,), 0.1, dtype=torch.float64))
    # Corrected: a pixel keeps its direction from the flat detector's beam spot, up to the bending.
    flat = positions_by_pixel(
        build_setup(config(command.replace(" -curved_det", ""))).geometry, slow, fast, 1, depth, False
    )
    assert torch.all((flat[:, 0, 0, 1:] * bent[:, 1:]) > 0)
    # nanoBragg: the fast and slow offsets from the beam trade places and signs (pixel (s, f) lands
    # where the corrected detector puts pixel (3 - f, 3 - s)).
    mirrored = (3 - fast) * 4 + (3 - slow)
    torch.testing.assert_close(bent_c, bent[mirrored], rtol=1e-12, atol=1e-15)


# -- per-pixel factors from the first sub-pixel ---------------------------------------------------


def test_first_subpixel_factors_both_sides():
    """-corrected evaluates solid angle and polarization per sub-pixel: a 2x2-oversampled pixel then
    equals the sum of four pixels half its size. nanoBragg takes them from the first sub-pixel."""
    base = f"{TRICLINIC} {CUSTOM} -polar 0.5 -Xbeam 4.1 -Ybeam 5.3"
    fine = image(f"{base} -detpixels 24 -pixel 0.4 -oversample 1")
    blocks = fine.reshape(12, 2, 12, 2).sum(dim=(1, 3))
    coarse = f"{base} -detpixels 12 -pixel 0.8 -oversample 2"
    torch.testing.assert_close(image(coarse, corrected=True), blocks, rtol=1e-12, atol=0)
    nanobragg = image(coarse)
    assert not torch.allclose(nanobragg, blocks, rtol=1e-5)
    # nanoBragg's pixel: the sum over sub-pixels times the first sub-pixel's factors (trace.py
    # evaluates that independently of the renderer).
    setup = build_setup(config(coarse))
    for fast, slow in ((0, 0), (5, 7), (11, 3)):
        trace = trace_pixel(setup, fast, slow, float(nanobragg[slow, fast]))
        assert pixel_photons(trace, setup) == pytest.approx(float(nanobragg[slow, fast]), rel=1e-12)


def test_sensor_layers_both_sides():
    """Two sensor layers: nanoBragg scales their sum by the last layer's capture fraction (and the
    first layer's solid angle); -corrected weights each layer by its own. N = 1 makes every
    evaluation F^2, so the expected pixels follow from the geometry alone."""
    command = "-cell 100 -default_F 10 -N 1 -detpixels 8 -pixel 1 -oversample 1 -nopolar"
    command += " -detector_abs 300 -detector_thick 200 -detector_thicksteps 2"
    setup = build_setup(config(command))
    depths = setup.sensor.step * torch.arange(2, dtype=torch.float64)
    pos = positions_by_pixel(setup.geometry, torch.tensor([6]), torch.tensor([4]), 1, depths, False)[0, :, 0]
    airpath = pos.norm(dim=-1)
    omega = solid_angle(detector_frame(setup.geometry), airpath, False)
    cos = (pos / airpath[:, None] * setup.geometry.odet).sum(-1)
    depth = setup.sensor.step * setup.sensor.mu / cos
    capture = torch.exp(-torch.arange(2) * depth) - torch.exp(-(torch.arange(2) + 1) * depth)
    scale = R_E_SQUARED * float(setup.fluence) * 10.0**2 / setup.steps
    nanobragg = scale * 2 * float(omega[0]) * float(capture[1])
    corrected = scale * float((omega * capture).sum())
    assert float(image(command)[6, 4]) == pytest.approx(nanobragg, rel=1e-12)
    assert float(image(command, corrected=True)[6, 4]) == pytest.approx(corrected, rel=1e-12)


# -- -oversample_* multiply the running sum -------------------------------------------------------


def test_running_product_matches_a_plain_loop():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    w = torch.tensor([[0.5, 2.0, 0.25, 3.0]], dtype=torch.float64)
    reached = torch.tensor([[True, True, False, True]])
    total = 10.0
    for xi, wi, ri in zip(x[0].tolist(), w[0].tolist(), reached[0].tolist()):
        if ri:
            total = (total + xi) * wi
    assert float(running_product(x, w, reached, torch.tensor([10.0], dtype=torch.float64))) == pytest.approx(total)


def test_oversample_omega_both_sides():
    """nanoBragg's -oversample_omega multiplies its running sum by each sub-pixel's solid angle."""
    command = f"{TRICLINIC} -detpixels 6 -pixel 1 -oversample 2 -oversample_omega -nopolar"
    nanobragg = image(command)
    setup = build_setup(config(command))
    slow, fast = torch.tensor([4]), torch.tensor([3])
    pos = positions_by_pixel(setup.geometry, slow, fast, 2, torch.zeros(1, dtype=torch.float64), False)[0, 0]
    omega = solid_angle(detector_frame(setup.geometry), pos.norm(dim=-1), False)
    q = (pos / pos.norm(dim=-1, keepdim=True) - setup.sources.incident[0]) / setup.sources.wavelength[0]
    hkl = (setup.orientations[0, 0] @ q.T).reshape(3, 4)
    f_latt = lattice_factor(setup.shape, hkl, setup.N, setup.lattice.reciprocal, setup.fudge)
    total = 0.0
    for sub in range(4):  # nanoBragg's loop: I += F^2 F_latt^2; I *= omega
        total = (total + 100.0**2 * float(f_latt[sub]) ** 2) * float(omega[sub])
    expected = R_E_SQUARED * float(setup.fluence) * total / setup.steps
    assert float(nanobragg[4, 3]) == pytest.approx(expected, rel=1e-12)
    # -corrected: each contribution times its own solid angle, the same as -corrected alone.
    torch.testing.assert_close(image(command, True), image(command.replace(" -oversample_omega", ""), True))


# -- water background ------------------------------------------------------------------------------


def test_water_background_both_sides():
    """Water alone (a crystal of negligible F): nanoBragg divides it by steps and applies r_e^2 fluence
    a second time; -corrected gives I_bg x solid angle x polarization, whatever the sampling."""
    water = "-cell 100 -default_F 1e-30 -detpixels 6 -pixel 1 -water 50 -nopolar"
    one, two = image(f"{water} -oversample 1"), image(f"{water} -oversample 2")
    setup = build_setup(config(f"{water} -oversample 1"))
    I_bg = float(water_background(setup.fluence, 50.0))
    pos = positions_by_pixel(
        setup.geometry, torch.tensor([2]), torch.tensor([3]), 1, torch.zeros(1, dtype=torch.float64), False
    )
    omega = float(solid_angle(detector_frame(setup.geometry), pos.norm(dim=-1), False))
    assert float(one[2, 3]) == pytest.approx(I_bg * R_E_SQUARED * float(setup.fluence) * omega, rel=1e-12)
    first = positions_by_pixel(
        build_setup(config(f"{water} -oversample 2")).geometry,
        torch.tensor([2]),
        torch.tensor([3]),
        2,
        torch.zeros(1, dtype=torch.float64),
        False,
    )[0, 0, 0]
    first_omega = float(solid_angle(detector_frame(setup.geometry), first.norm(), False))
    # the first sub-pixel's solid angle, and divided by the 2 x 2 steps
    assert float(two[2, 3]) == pytest.approx(I_bg * R_E_SQUARED * float(setup.fluence) * first_omega / 4, rel=1e-12)
    corrected = image(f"{water} -oversample 1", corrected=True)
    assert float(corrected[2, 3]) == pytest.approx(I_bg * omega, rel=1e-12)
    torch.testing.assert_close(image(f"{water} -oversample 2", corrected=True), corrected, rtol=1e-3, atol=0)


# -- source weights ------------------------------------------------------------------------------


def test_source_weights_both_sides(tmp_path):
    sources = {"one": "-10 0 0 1 1.0e-10\n", "two": "-10 0 0 3 1.2e-10\n"}
    for name, line in sources.items():
        (tmp_path / f"{name}.txt").write_text(line)
    (tmp_path / "both.txt").write_text("".join(sources.values()))
    grid = f"{TRICLINIC} -detpixels 12 -pixel 1 -oversample 1 -sourcefile "
    one, two = image(grid + str(tmp_path / "one.txt")), image(grid + str(tmp_path / "two.txt"))
    torch.testing.assert_close(image(grid + str(tmp_path / "both.txt")), (one + two) / 2, rtol=1e-12, atol=0)
    weighted = (0.5 * one + 1.5 * two) / 2  # intensities 1 and 3: weights I / mean(I)
    torch.testing.assert_close(image(grid + str(tmp_path / "both.txt"), True), weighted, rtol=1e-12, atol=0)


# -- interpolation switch --------------------------------------------------------------------------


def test_interpolation_switch_both_sides(tmp_path):
    """A small table: stencils near its edge are unsafe. nanoBragg stops interpolating for the rest of
    the run at the first one; -corrected interpolates wherever the stencil fits."""
    rng = np.random.default_rng(1)
    lines = [
        f"{h} {k} {l} {rng.uniform(50, 150):.2f}" for h in range(-4, 5) for k in range(-4, 5) for l in range(-4, 5)
    ]
    (tmp_path / "t.hkl").write_text("\n".join(lines) + "\n")
    base = f"-cell 60 60 60 90 90 90 -hkl {tmp_path / 't.hkl'} -dump {tmp_path / 'F.bin'} -N 2 -lambda 1"
    base += " -distance 100 -detpixels 16 -pixel 2 -oversample 1"
    tricubic, nearest = f"{base} -interpolate", f"{base} -nointerpolate"
    sticky, corrected = image(tricubic), image(tricubic, True)
    near = image(nearest)
    # From the first pixel whose stencil leaves the table on (in nanoBragg's order), F is the nearest one.
    flat_sticky, flat_near, flat_corr = sticky.flatten(), near.flatten(), corrected.flatten()
    switched = int(torch.nonzero(flat_sticky == flat_near)[0, 0]) if bool((flat_sticky == flat_near).any()) else None
    assert switched is not None and switched < 255
    torch.testing.assert_close(flat_sticky[switched:], flat_near[switched:], rtol=0, atol=0)
    assert not torch.equal(flat_corr[switched:], flat_near[switched:])  # corrected keeps interpolating where safe
    torch.testing.assert_close(flat_corr[:switched], flat_sticky[:switched], rtol=1e-12, atol=0)


# -- SMV headers (-img, -mask) -------------------------------------------------------------------


@pytest.fixture
def header_file(tmp_path):
    """An SMV file whose DISTANCE, CLOSE_DISTANCE and TWOTHETA differ, as a tilted detector's do."""
    header = SMVHeader(8, 6, 1e-4, 0.12, 1e-10, 3e-4, 2e-4, 3e-4, 2e-4, 6e-4, (0, 0, 0), 3.5, 2.5, 0.1, 0, 0, 0)
    data = bytearray(smv_bytes(np.ones((6, 8), dtype=np.uint16), header))
    text = data[:512].decode("ascii").replace("TWOTHETA=0;", "TWOTHETA=5;")
    data[:512] = text.encode("ascii")
    (tmp_path / "h.img").write_bytes(bytes(data))
    return tmp_path / "h.img"


def test_header_distance_both_sides(header_file):
    cell = ["-cell", "50", "-default_F", "1"]
    nanobragg = parse_flags([*cell, "-img", str(header_file)])[0].detector
    corrected = parse_flags([*cell, "-img", str(header_file), "-corrected"])[0].detector
    assert nanobragg.distance_mm == pytest.approx(100.0)  # "DISTANCE" last found in CLOSE_DISTANCE=100
    assert corrected.distance_mm == pytest.approx(120.0)
    assert nanobragg.close_distance_mm == corrected.close_distance_mm == pytest.approx(100.0)


def test_header_close_distance_and_distance_flag_both_sides(header_file):
    args = ["-cell", "50", "-default_F", "1", "-img", str(header_file), "-distance", "200"]
    assert parse_flags(args)[0].detector.close_distance_mm == pytest.approx(100.0)  # still fixes the detector
    assert build_setup(parse_flags(args)[0]).geometry.distance.item() == pytest.approx(0.1)
    corrected = parse_flags([*args, "-corrected"])[0]
    assert corrected.detector.close_distance_mm is None and corrected.detector.distance_mm == 200


def test_header_twotheta_both_sides(header_file):
    args = ["-cell", "50", "-default_F", "1", "-img", str(header_file)]
    assert parse_flags(args)[0].detector.twotheta_deg == 0.0
    assert parse_flags([*args, "-corrected"])[0].detector.twotheta_deg == 5.0


def test_mask_beam_center_both_sides(header_file):
    args = ["-cell", "50", "-default_F", "1", "-mask", str(header_file)]
    # BEAM_CENTER_Y=0.2 mm on a detector 6 x 0.1 mm high
    assert parse_flags(args)[0].detector.Ybeam_mm == pytest.approx(0.4)
    assert parse_flags([*args, "-corrected"])[0].detector.Ybeam_mm == pytest.approx(0.2)
    assert parse_flags(["-cell", "50", "-default_F", "1", "-img", str(header_file)])[0].detector.Ybeam_mm == 0.2


def test_python_api_option():
    from nanobrag import SimulationConfig

    cfg = config(f"{TRICLINIC} -detpixels 8 -pixel 1 -oversample 2")
    corrected = SimulationConfig.model_validate(cfg.model_dump() | {"corrected": True})
    assert torch.equal(simulate(corrected), image(f"{TRICLINIC} -detpixels 8 -pixel 1 -oversample 2", True))
    assert not torch.equal(simulate(corrected), simulate(cfg))
    assert re.search("corrected", SimulationConfig.model_fields["corrected"].description)
