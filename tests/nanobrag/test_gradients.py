"""Tier-2 gradient suite: autograd against finite differences, gradient flow, the gradient probe; Tier-3 physics.

Compile guard: nanobrag can send its forward hot loop through torch.compile (opt-in). Gradient
tests must run the eager path, so NANOBRAGG_DISABLE_COMPILE=1 is set here, before nanobrag is
imported, and an autouse fixture fails every test loudly if it is not "1" (for instance when a
caller exported NANOBRAGG_DISABLE_COMPILE=0). Canonical command (docs/development/testing_strategy.md
§4.1):

    NANOBRAGG_DISABLE_COMPILE=1 pytest tests/nanobrag/test_gradients.py

Every gradient check runs on the 16x16 triclinic fixture (nanobrag.fixtures), whose oversampling
is fixed: nanoBragg's automatic choice would jump under a finite-difference step. Each check runs on
every device (the ``device`` fixture) and in both dtypes: in float64 against central differences
(gradcheck); in float32 against the float64 autograd gradient that gradcheck verifies, since finite
differences in float32 measure round-off, not derivatives.
"""

import os

os.environ.setdefault("NANOBRAGG_DISABLE_COMPILE", "1")  # before nanobrag is imported: see the docstring

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

from nanobrag import BeamConfig, CrystalConfig, DetectorConfig, SimulationConfig, StructureConfig, cli, simulate
from nanobrag.compiled import compile_disabled
from nanobrag.errors import InputError
from nanobrag.fixtures import triclinic_fixture
from nanobrag.gradients import CELL_PARAMETERS, leaf_tensors, probe_gradients, starting_values, write_json
from nanobrag.io.hkl import HKLTable, write_dump


@pytest.fixture(autouse=True, scope="module")
def eager_forward_path():
    """Fail loudly unless the compile guard is on (see the module docstring)."""
    value = os.environ.get("NANOBRAGG_DISABLE_COMPILE")
    if value != "1" or not compile_disabled():
        pytest.fail(
            f"gradient tests need NANOBRAGG_DISABLE_COMPILE=1 (found {value!r}); "
            "run: NANOBRAGG_DISABLE_COMPILE=1 pytest tests/nanobrag/test_gradients.py",
            pytrace=False,
        )


# ---------------------------------------------------------------------------------------------
# Helpers

FIXTURE = triclinic_fixture()  # default_F = 100, 16x16 pixels, oversample 2
_WEIGHT_SEED = 20251015


# float32 autograd gradients agree with float64 ones to this relative error (of the gradient vector's
# norm). Measured on the fixture: at most 1e-4 (detector_roty); a gradient sums signed contributions
# of every pixel and evaluation, so it keeps fewer digits than the image (~1e-6).
FLOAT32_GRADIENT_RTOL = 5e-4


def pixel_weights(shape: tuple[int, int], dtype=torch.float64, device=None) -> torch.Tensor:
    """Fixed positive weights in [0.5, 1.5), so that a loss sees every pixel separately."""
    generator = torch.Generator().manual_seed(_WEIGHT_SEED)
    return torch.rand(shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device) + 0.5


def weighted_loss(image: torch.Tensor) -> torch.Tensor:
    """A scalar of order 10 for the fixture: per-pixel weights keep pixel errors from cancelling."""
    return (image * pixel_weights(image.shape, image.dtype, image.device)).sum() / 1e4


def loss_of(config: SimulationConfig, names, units=None):
    """The weighted loss as a function of one tensor per named parameter (times its unit)."""
    units = units or [1.0] * len(names)

    def loss(*values: torch.Tensor) -> torch.Tensor:
        params = {name: value * unit for name, value, unit in zip(names, values, units)}
        return weighted_loss(simulate(config, params=params))

    return loss


def leaves(
    config: SimulationConfig, names, units=None, at=None, dtype=torch.float64, device=None
) -> tuple[torch.Tensor, ...]:
    """Leaf tensors at the configuration's values (divided by their units), or at the values ``at``."""
    units = units or [1.0] * len(names)
    if at is None:
        values = starting_values(config, names)
        at = [values[name] / unit for name, unit in zip(names, units)]
    return tuple(torch.tensor(float(v), dtype=dtype, device=device, requires_grad=True) for v in at)


def check(
    config: SimulationConfig, names, units=None, at=None, *, dtype=torch.float64, device=torch.device("cpu")
) -> bool:
    """The weighted loss's gradient w.r.t. the named parameters, checked in ``dtype`` on ``device``.

    float64: torch.autograd.gradcheck (central differences, tight tolerances). float32: the autograd
    gradient against the float64 one, to :data:`FLOAT32_GRADIENT_RTOL`.
    """
    loss = loss_of(config, names, units)
    if dtype == torch.float64:
        return gradcheck(loss, leaves(config, names, units, at, dtype, device), eps=1e-6, atol=1e-7, rtol=1e-5)
    gradients = []
    for precision in (dtype, torch.float64):
        inputs = leaves(config, names, units, at, precision, device)
        gradients.append(torch.stack(torch.autograd.grad(loss(*inputs), inputs)).double())
    low, reference = gradients
    error = float((low - reference).norm() / reference.norm())
    assert error < FLOAT32_GRADIENT_RTOL, f"{dtype} gradient {low.tolist()} vs float64 {reference.tolist()}"
    return True


def central_difference(loss, point: torch.Tensor, direction: torch.Tensor, step: float) -> float:
    """(L(x + h v) - L(x - h v)) / 2h in float64."""
    with torch.no_grad():
        return float((loss(point + step * direction) - loss(point - step * direction)) / (2 * step))


# ---------------------------------------------------------------------------------------------
# Tier 2: unit-cell parameters


class TestCellGradcheck:
    """Gradients of the image w.r.t. the six cell parameters match finite differences."""

    @pytest.mark.parametrize("name", CELL_PARAMETERS)
    def test_single_parameter(self, name, dtype, device):
        assert check(FIXTURE, [name], dtype=dtype, device=device)

    def test_all_six_jointly(self, dtype, device):
        assert check(FIXTURE, list(CELL_PARAMETERS), dtype=dtype, device=device)

    def test_second_derivatives(self):
        inputs = leaves(FIXTURE, CELL_PARAMETERS)
        assert gradgradcheck(loss_of(FIXTURE, CELL_PARAMETERS), inputs, eps=1e-6, atol=1e-6, rtol=1e-4)

    def test_cell_away_from_the_configured_one(self, dtype, device):
        # A different triclinic cell, passed as parameter values rather than configured.
        assert check(
            FIXTURE, list(CELL_PARAMETERS), at=(64.0, 83.0, 97.0, 81.0, 78.0, 101.0), dtype=dtype, device=device
        )


# ---------------------------------------------------------------------------------------------
# Tier 2: orientation, detector, beam and crystal size


class TestGeometryGradcheck:
    """Crystal orientation and detector placement."""

    @pytest.mark.parametrize("name", ["misset_x", "misset_y", "misset_z"])
    def test_misset_angle(self, name, dtype, device):
        assert check(FIXTURE, [name], dtype=dtype, device=device)

    def test_all_misset_angles_jointly(self, dtype, device):
        assert check(FIXTURE, ["misset_x", "misset_y", "misset_z"], dtype=dtype, device=device)

    def test_detector_distance(self, dtype, device):
        assert check(FIXTURE, ["distance"], dtype=dtype, device=device)

    @pytest.mark.parametrize("name", ["beam_x", "beam_y"])
    def test_beam_centre(self, name, dtype, device):
        # The fixture leaves the beam centre to nanoBragg's default (the detector centre).
        assert check(FIXTURE, [name], dtype=dtype, device=device)

    def test_beam_centre_off_the_default(self, dtype, device):
        assert check(FIXTURE, ["beam_x", "beam_y"], at=(13.7, 19.1), dtype=dtype, device=device)

    @pytest.mark.parametrize("name", ["detector_rotx", "detector_roty", "detector_rotz", "twotheta"])
    def test_detector_rotation_at_zero(self, name, dtype, device):
        assert check(FIXTURE, [name], dtype=dtype, device=device)

    def test_detector_rotations_away_from_zero(self, dtype, device):
        assert check(
            FIXTURE,
            ["detector_rotx", "detector_roty", "detector_rotz", "twotheta"],
            at=(2.0, -3.0, 1.5, 4.0),
            dtype=dtype,
            device=device,
        )

    def test_sample_pivot_geometry(self, dtype, device):
        # XDS places the detector from ORGX/ORGY and pivots about the sample: a different code path.
        config = FIXTURE.model_copy(deep=True)
        config.detector.convention = "xds"
        config.detector.ORGX, config.detector.ORGY = 7.0, 9.5
        assert check(
            config,
            ["distance", "detector_rotx", "detector_roty", "twotheta"],
            at=(100.0, 1.0, -2.0, 3.0),
            dtype=dtype,
            device=device,
        )


class TestBeamAndCrystalGradcheck:
    """Wavelength, fluence and crystal size treated as a continuous number of cells."""

    def test_wavelength(self, dtype, device):
        assert check(FIXTURE, ["wavelength"], dtype=dtype, device=device)

    def test_fluence(self, dtype, device):
        # The image is linear in a fluence of ~1e29 photons/m^2: differentiate w.r.t. fluence / 1e29.
        assert check(FIXTURE, ["fluence"], units=[1e29], dtype=dtype, device=device)

    @pytest.mark.parametrize("name", ["N_a", "N_b", "N_c"])
    def test_crystal_size_at_whole_cells(self, name, dtype, device):
        assert check(FIXTURE, [name], dtype=dtype, device=device)

    def test_crystal_size_between_whole_cells(self, dtype, device):
        assert check(FIXTURE, ["N_a", "N_b", "N_c"], at=(4.6, 5.3, 3.7), dtype=dtype, device=device)

    def test_polarization(self, dtype, device):
        assert check(FIXTURE, ["polarization"], at=(0.9,), dtype=dtype, device=device)

    def test_image_is_linear_in_fluence(self):
        fluence = torch.tensor(3e28, dtype=torch.float64, requires_grad=True)
        image = simulate(FIXTURE, params={"fluence": fluence})
        (grad,) = torch.autograd.grad(image.sum(), fluence)
        assert grad.item() == pytest.approx(image.sum().item() / 3e28, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Tier 2: through a structure-factor table


@pytest.fixture(scope="module")
def table_config(tmp_path_factory) -> SimulationConfig:
    """The fixture with random F from a table (an Fdump.bin cache) covering every index it reaches.

    The fixture reaches |h|, |k|, |l| of about 20; the table spans -24..24 so the tricubic stencil
    never leaves it (leaving it would switch interpolation off mid-image, as in nanoBragg).
    """
    path = tmp_path_factory.mktemp("table") / "Fdump.bin"
    F = np.random.default_rng(7).uniform(50.0, 150.0, (49, 49, 49))
    write_dump(path, HKLTable(-24, 24, -24, 24, -24, 24, F, default_F=0.0, count=F.size))
    config = FIXTURE.model_copy(deep=True)
    config.structure = StructureConfig(dump_path=path)
    return config


class TestStructureFactorTableGradients:
    @pytest.mark.parametrize("interpolate", [False, True], ids=["nearest", "tricubic"])
    def test_cell_gradcheck(self, table_config, interpolate, dtype, device):
        config = table_config.model_copy(deep=True)
        config.structure.interpolate = interpolate
        assert check(config, list(CELL_PARAMETERS), dtype=dtype, device=device)

    def test_tricubic_interpolation_is_in_use(self, table_config):
        nearest, tricubic = (table_config.model_copy(deep=True) for _ in range(2))
        nearest.structure.interpolate, tricubic.structure.interpolate = False, True
        assert not torch.allclose(simulate(nearest), simulate(tricubic), rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# The gradient probe (nanobrag.gradients.probe_gradients and `nanobrag probe-gradients`)


class TestGradientProbe:
    def test_reports_zero_then_nonzero_cell_gradients(self):
        report = probe_gradients(triclinic_fixture(), CELL_PARAMETERS, [{"default_F": 0.0}, {"default_F": 100.0}])
        zero, hundred = report["results"]
        assert zero["setting"] == {"default_F": 0.0} and hundred["setting"] == {"default_F": 100.0}
        assert zero["loss"] == 0.0
        assert all(zero["gradients"][name] == 0.0 for name in CELL_PARAMETERS)
        assert hundred["loss"] > 0.0
        assert all(hundred["gradients"][name] != 0.0 for name in CELL_PARAMETERS)

    @pytest.mark.parametrize("loss", ["sum", "mean"])
    def test_gradients_match_central_differences(self, loss):
        report = probe_gradients(FIXTURE, ["cell_a", "cell_gamma", "distance"], [{}], loss)
        (result,) = report["results"]
        reduce = {"sum": torch.sum, "mean": torch.mean}[loss]
        for name in ("cell_a", "cell_gamma", "distance"):
            value = result["values"][name]
            step = 1e-6 * value

            def at(x: float, name: str = name) -> float:
                return float(reduce(simulate(FIXTURE, params={name: torch.tensor(x, dtype=torch.float64)})))

            numeric = (at(value + step) - at(value - step)) / (2 * step)
            assert result["gradients"][name] == pytest.approx(numeric, rel=1e-5)

    def test_a_parameter_outside_the_graph_has_no_gradient(self):
        # Without mosaicity the image does not depend on the mosaic spread at all: null, not 0.
        report = probe_gradients(FIXTURE, ["cell_a", "mosaic_spread"], [{}])
        assert report["results"][0]["gradients"]["mosaic_spread"] is None
        assert report["results"][0]["gradients"]["cell_a"] != 0.0

    def test_only_parameters_outside_the_graph_have_no_gradient(self):
        report = probe_gradients(FIXTURE, ["mosaic_spread"], [{}])
        assert report["results"][0]["gradients"] == {"mosaic_spread": None}

    def test_setting_of_a_probed_parameter_is_its_starting_value(self):
        report = probe_gradients(FIXTURE, ["default_F", "cell_a"], [{"default_F": 50.0}])
        result = report["results"][0]
        assert result["values"]["default_F"] == 50.0
        # The image is quadratic in F: dL/dF = 2 L / F.
        assert result["gradients"]["default_F"] == pytest.approx(2 * result["loss"] / 50.0, rel=1e-12)

    def test_report_layout(self):
        report = probe_gradients(FIXTURE, ["cell_b"], [{"default_F": 100.0}], "mean", dtype=torch.float32)
        assert report["loss"] == "mean" and report["dtype"] == "float32"
        assert report["parameters"] == ["cell_b"] and report["units"] == {"cell_b": "A"}
        assert SimulationConfig.model_validate(report["config"]) == FIXTURE

    @pytest.mark.parametrize(
        "kwargs, fragment",
        [
            (dict(parameters=["cell_x"]), "cell_x"),
            (dict(parameters=[]), "at least one"),
            (dict(settings=[{"default_G": 1.0}]), "default_G"),
            (dict(loss="median"), "median"),
        ],
    )
    def test_bad_input(self, kwargs, fragment):
        with pytest.raises(InputError, match=fragment):
            probe_gradients(FIXTURE, **kwargs)

    def test_cell_parameters_of_a_matrix_crystal_are_refused(self):
        config = FIXTURE.model_copy(deep=True)
        config.crystal.cell = None
        config.crystal.mosflm_matrix = ((0.0143, 0.0, 0.0), (0.0, 0.0125, 0.0), (0.0, 0.0, 0.0111))
        with pytest.raises(InputError, match="MOSFLM"):
            probe_gradients(config, ["cell_a"], [{}])

    def test_report_file_is_strict_json(self, tmp_path):
        # A non-finite loss or gradient is the finding a probe exists for; it must not break the file.
        path = tmp_path / "report.json"
        write_json(path, {"loss": float("nan"), "gradients": {"a": float("inf"), "b": -float("inf"), "c": None}})
        text = path.read_text()
        assert "NaN" not in text and "Infinity" not in text
        assert json.loads(text) == {"loss": "nan", "gradients": {"a": "inf", "b": "-inf", "c": None}}


class TestProbeCommand:
    def test_writes_only_json_with_the_fixture(self, tmp_path, capsys):
        out = tmp_path / "gradients.json"
        status = cli.main(["probe-gradients", "--default-F", "0", "100", "--out", str(out)])
        captured = capsys.readouterr()
        assert status == 0
        assert captured.out == ""  # progress goes to stderr
        assert "default_F" in captured.err
        report = json.loads(out.read_text())
        assert [r["setting"] for r in report["results"]] == [{"default_F": 0.0}, {"default_F": 100.0}]
        assert all(v == 0.0 for v in report["results"][0]["gradients"].values())
        assert all(v != 0.0 for v in report["results"][1]["gradients"].values())
        assert report["model"] == {"fixture": "nanobrag.fixtures.triclinic_fixture"}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["gradients.json"]  # no temporary left behind

    def test_with_nanobragg_flags_and_chosen_parameters(self, tmp_path):
        out = tmp_path / "g.json"
        # The flags must describe a runnable model (nanoBragg refuses default_F 0 without -hkl);
        # --default-F then replaces its structure factor.
        flags = [
            "-cell",
            "70",
            "80",
            "90",
            "75",
            "85",
            "95",
            "-misset",
            "10",
            "20",
            "30",
            "-N",
            "5",
            "-lambda",
            "1",
            "-distance",
            "100",
            "-detpixels",
            "16",
            "-pixel",
            "2",
            "-oversample",
            "2",
            "-default_F",
            "1",
            "-dtype",
            "float32",
        ]
        status = cli.main(
            [
                "probe-gradients",
                "--default-F",
                "100",
                "--param",
                "cell_a",
                "distance",
                "--loss",
                "mean",
                "--out",
                str(out),
                "--",
                *flags,
            ]
        )
        assert status == 0
        report = json.loads(out.read_text())
        assert report["parameters"] == ["cell_a", "distance"] and report["dtype"] == "float32"
        assert report["loss"] == "mean" and report["model"] == {"flags": flags}
        expected = probe_gradients(FIXTURE, ["cell_a", "distance"], [{"default_F": 100.0}], "mean")
        for name in ("cell_a", "distance"):
            assert report["results"][0]["gradients"][name] == pytest.approx(
                expected["results"][0]["gradients"][name], rel=1e-3
            )

    @pytest.mark.parametrize(
        "args, fragment",
        [
            (["--param", "cell_q"], "--param: unknown parameter(s) cell_q"),
            (["--loss", "max"], "--loss"),
            (["--", "-cell", "70", "-default_F", "1", "-strict", "-bogus"], "-bogus: not a nanoBragg option"),
            (
                ["--", "-cell", "70", "-default_F", "1", "-compile"],
                "-kernel fused/-compile: gradient commands run the eager path",
            ),
        ],
    )
    def test_bad_input_exits_2_without_output(self, tmp_path, capsys, args, fragment):
        out = tmp_path / "g.json"
        status = cli.main(["probe-gradients", "--out", str(out), *args])
        err = capsys.readouterr().err
        assert status == 2
        assert fragment in err and "Traceback" not in err
        assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Tier 2: end-to-end gradient flow (initiative GRADIENT-FLOW-001)


class TestAdvancedGradients:
    """The full simulation, all six cell parameters as leaf tensors."""

    def test_gradient_flow_simulation(self):
        # GRADIENT-FLOW-001: this test once failed with every cell gradient exactly 0. The zero-
        # intensity probe (default_F 0 vs 100) showed the graph was intact: the test had simulated
        # with nanoBragg's default structure factor of 0, so the image, and every gradient, was 0.
        # The fixture now sets default_F = 100; test_zero_structure_factors_... pins the cause.
        config = triclinic_fixture(default_F=100.0)
        cell = leaf_tensors(starting_values(config, CELL_PARAMETERS), torch.float64)

        image = simulate(config, params=cell)
        assert image.requires_grad
        assert image.sum() > 0
        image.sum().backward()

        magnitudes = {}
        for name, tensor in cell.items():
            assert tensor.grad is not None, f"{name} is not connected to the image"
            assert torch.isfinite(tensor.grad), f"{name} has a non-finite gradient"
            magnitudes[name] = abs(float(tensor.grad))
        assert max(magnitudes.values()) > 1e-6, magnitudes

    def test_zero_structure_factors_give_zero_image_and_gradients(self):
        # The root cause of GRADIENT-FLOW-001: with default_F = 0 (nanoBragg's default) there is
        # no intensity, so the gradients are exactly zero although the graph is intact.
        config = triclinic_fixture(default_F=0.0)
        cell = leaf_tensors(starting_values(config, CELL_PARAMETERS), torch.float64)
        image = simulate(config, params=cell)
        assert image.requires_grad
        assert torch.count_nonzero(image) == 0
        image.sum().backward()
        assert all(t.grad is not None and float(t.grad) == 0.0 for t in cell.values())

    def test_every_cell_gradient_is_nonzero_with_structure_factors(self):
        cell = leaf_tensors(starting_values(FIXTURE, CELL_PARAMETERS), torch.float64)
        simulate(FIXTURE, params=cell).sum().backward()
        assert all(float(t.grad) != 0.0 for t in cell.values())


# ---------------------------------------------------------------------------------------------
# Tier 2: property-based checks over random triclinic cells and orientations

_length = st.floats(min_value=40.0, max_value=120.0)
# Angles within 70-110 degrees always make a valid cell (each angle below the sum of the others).
_angle = st.floats(min_value=70.0, max_value=110.0)
triclinic_cells = st.tuples(_length, _length, _length, _angle, _angle, _angle)
orientations = st.tuples(*[st.floats(min_value=-180.0, max_value=180.0)] * 3)  # misset x, y, z (deg)
directions = st.tuples(*[st.floats(min_value=-1.0, max_value=1.0)] * 9).filter(lambda v: sum(x * x for x in v) > 0.1)
_CELL_AND_MISSET = list(CELL_PARAMETERS) + ["misset_x", "misset_y", "misset_z"]


class TestGradientProperties:
    """For any triclinic cell and orientation: finite gradients that match central differences."""

    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(cell=triclinic_cells, misset=orientations, direction=directions)
    def test_directional_derivative_matches_central_difference(self, cell, misset, direction):
        loss = loss_of(FIXTURE, _CELL_AND_MISSET)
        point = torch.tensor(cell + misset, dtype=torch.float64)
        v = torch.tensor(direction, dtype=torch.float64)
        x = point.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(*x.unbind()), x)
        assert torch.isfinite(grad).all()
        numeric = central_difference(lambda p: loss(*p.unbind()), point, v, step=1e-5)
        analytic = float(grad @ v)
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-7 * float(grad.norm() * v.norm()) + 1e-12)

    @settings(max_examples=10, deadline=None, derandomize=True)
    @given(cell=triclinic_cells)
    def test_cell_gradients_are_finite_and_reach_every_parameter(self, cell):
        cell_leaves = leaf_tensors(dict(zip(CELL_PARAMETERS, cell)), torch.float64)
        image = simulate(FIXTURE, params=cell_leaves)
        grads = torch.autograd.grad(weighted_loss(image), list(cell_leaves.values()))
        assert all(torch.isfinite(g) for g in grads)
        assert all(g != 0 for g in grads)


# ---------------------------------------------------------------------------------------------
# Tier 3: physical behaviour

# A cubic 30 A cell in nanoBragg's default orientation (a* along the beam, x) at 6 A: reflections
# (-1, 0, +-3) and (-1, +-3, 0) satisfy the Bragg condition exactly, with 2theta = 36.87 degrees
# (diffracted direction (0.8, +-0.6, 0) and (0.8, 0, +-0.6)). At 40 mm they hit the detector 30 mm
# from the beam; with 1 mm pixels and the beam on pixel (40, 40) that is pixels 10 and 70.
_BRAGG_PIXELS = {(40, 10), (40, 70), (10, 40), (70, 40)}  # (slow, fast)
_COS_2THETA = 0.8


def bragg_config(N=(10.0, 10.0, 10.0), default_F=100.0) -> SimulationConfig:
    # MOSFLM: fast = +z, slow = -y, and the beam centre lies half a pixel beyond -Xbeam/-Ybeam:
    # Xbeam = Ybeam = 40 mm puts the beam on the centre of pixel (40, 40).
    return SimulationConfig(
        crystal=CrystalConfig(cell=(30.0, 30.0, 30.0, 90.0, 90.0, 90.0), N=N),
        structure=StructureConfig(default_F=default_F),
        detector=DetectorConfig(
            distance_mm=40.0, fpixels=81, spixels=81, pixel_mm=1.0, oversample=1, Xbeam_mm=40.0, Ybeam_mm=40.0
        ),
        beam=BeamConfig(wavelength_A=6.0),
    )


def brightest(image: torch.Tensor, count: int) -> list[tuple[int, int]]:
    width = image.shape[1]
    return [(int(i) // width, int(i) % width) for i in image.flatten().topk(count).indices]


class TestPhysicalBehaviour:
    def test_bragg_peaks_land_where_the_geometry_puts_them(self, dtype, device, rtol):
        image = simulate(bragg_config(), dtype=dtype, device=device)
        direct, *reflections = brightest(image, 5)
        assert direct == (40, 40)  # the (000) reflection, on the beam
        assert set(reflections) == _BRAGG_PIXELS
        # Same 2theta for all four: equal intensities, relative to the direct beam by the solid
        # angle (cos^3 2theta) and the unpolarised polarization factor (1 + cos^2 2theta) / 2.
        peaks = torch.stack([image[p] for p in _BRAGG_PIXELS])
        assert torch.allclose(peaks, peaks[0], rtol=rtol)
        expected = _COS_2THETA**3 * (1 + _COS_2THETA**2) / 2
        assert float(peaks[0] / image[40, 40]) == pytest.approx(expected, rel=max(rtol, 1e-9))

    def test_peaks_follow_the_beam_centre(self, dtype, device):
        shifted = bragg_config()
        shifted.detector.Xbeam_mm = 43.0  # MOSFLM: Xbeam moves the beam along slow
        reflections = brightest(simulate(shifted, dtype=dtype, device=device), 5)[1:]
        assert set(reflections) == {(s + 3, f) for s, f in _BRAGG_PIXELS}

    def test_intensity_scales_as_F_squared(self, dtype, device, rtol):
        strong = simulate(bragg_config(default_F=100.0), dtype=dtype, device=device)
        weak = simulate(bragg_config(default_F=25.0), dtype=dtype, device=device)
        assert torch.allclose(strong, 16.0 * weak, rtol=rtol, atol=0.0)
        assert torch.count_nonzero(simulate(bragg_config(default_F=0.0), dtype=dtype, device=device)) == 0

    def test_peak_intensity_scales_as_the_square_of_the_cell_count(self, dtype, device, rtol):
        # SQUARE shape: F_latt = Na Nb Nc exactly on a Bragg reflection, so I ~ (Na Nb Nc)^2.
        small = simulate(bragg_config(N=(4.0, 8.0, 16.0)), dtype=dtype, device=device)
        large = simulate(bragg_config(N=(10.0, 10.0, 10.0)), dtype=dtype, device=device)
        for pixel in _BRAGG_PIXELS | {(40, 40)}:
            assert float(large[pixel] / small[pixel]) == pytest.approx((1000.0 / 512.0) ** 2, rel=max(rtol, 1e-10))

    def test_float32_agrees_with_float64(self):
        results = {}
        for dtype in (torch.float32, torch.float64):
            cell = leaf_tensors(starting_values(FIXTURE, CELL_PARAMETERS), dtype)
            image = simulate(FIXTURE, params=cell)
            assert image.dtype == dtype
            grads = torch.autograd.grad(weighted_loss(image), list(cell.values()))
            results[dtype] = image.detach().double(), torch.stack(grads).double()
        (image32, grad32), (image64, grad64) = results[torch.float32], results[torch.float64]
        assert float((image32 - image64).abs().max() / image64.max()) < 1e-4
        assert float((grad32 - grad64).norm() / grad64.norm()) < 1e-3
