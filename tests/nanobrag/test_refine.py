"""Refinement: recovering model parameters from an image simulated at known values.

Gradient tests, so the compile guard of tests/nanobrag/test_gradients.py applies here too: the forward path
must be eager (NANOBRAGG_DISABLE_COMPILE=1, set before nanobrag is imported).
"""

import os

os.environ.setdefault("NANOBRAGG_DISABLE_COMPILE", "1")  # before nanobrag is imported

import itertools
import json

import numpy as np
import pytest
import torch

from nanobrag import cli, simulate
from nanobrag.compiled import compile_disabled
from nanobrag.dataset import DatasetSpec, read_manifest, run_dataset
from nanobrag.errors import InputError
from nanobrag.flags import parse_flags
from nanobrag.gradients import CELL_PARAMETERS
from nanobrag.refine import freeze_auto_selections, refine


@pytest.fixture(autouse=True, scope="module")
def eager_forward_path():
    if not compile_disabled():
        pytest.fail("refinement tests need NANOBRAGG_DISABLE_COMPILE=1", pytrace=False)


TRUE_CELL = (70.0, 80.0, 90.0, 75.0, 85.0, 95.0)
# 1% on the lengths and 0.5 degree on the angles, in mixed directions.
START_CELL = (70.7, 79.2, 90.9, 75.5, 84.5, 95.5)
# 64x64 pixels of 0.25 mm at 100 mm: spots span a few pixels, so the image samples them well.
MODEL = [
    "-misset",
    "10",
    "20",
    "30",
    "-default_F",
    "100",
    "-lambda",
    "1",
    "-N",
    "5",
    "-distance",
    "100",
    "-detpixels",
    "64",
    "-pixel",
    "0.25",
    "-oversample",
    "1",
]


def cell_flags(cell) -> list[str]:
    return ["-cell", *(f"{v:g}" for v in cell), *MODEL]


def model_config(cell, **detector):
    config = parse_flags(cell_flags(cell))[0]
    for key, value in detector.items():
        setattr(config.detector, key, value)
    return config


@pytest.fixture
def target_file(tmp_path, monkeypatch):
    """The float image of the true cell, written by the nanobrag command itself."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "target.bin"
    status = cli.main(
        [*cell_flags(TRUE_CELL), "-floatfile", str(path), "-intfile", str(tmp_path / "int.img"), "-nopgm", "-nonoise"]
    )
    assert status == 0
    return path


def test_refine_command_recovers_a_perturbed_cell(target_file, tmp_path, capsys):
    out = tmp_path / "result.json"
    status = cli.main(
        [
            "refine",
            "--target",
            str(target_file),
            "--refine",
            ",".join(CELL_PARAMETERS),
            "--out",
            str(out),
            "--",
            *cell_flags(START_CELL),
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.out == ""
    assert "iteration" in captured.err  # progress on stderr

    result = json.loads(out.read_text())
    assert result["converged"] is True
    assert result["initial"] == pytest.approx(
        {**dict(zip(CELL_PARAMETERS, START_CELL)), "scale": result["initial"]["scale"]}
    )
    for name, true in zip(CELL_PARAMETERS[:3], TRUE_CELL[:3]):
        assert abs(result["final"][name] - true) / true < 5e-4, (name, result["final"][name])
    for name, true in zip(CELL_PARAMETERS[3:], TRUE_CELL[3:]):
        assert abs(result["final"][name] - true) < 0.02, (name, result["final"][name])
    assert result["final"]["scale"] == pytest.approx(1.0, rel=1e-4)  # the target is the model's own image
    assert result["final_loss"] < 1e-8 < result["loss_history"][0]
    assert (
        result["iterations"]
        == sum(stage["iterations"] for stage in result["stages"])
        == len(result["loss_history"]) - 2
    )
    assert result["flags"] == cell_flags(START_CELL) and result["target"] == str(target_file)


def test_geometry_and_scale_are_recovered_together():
    truth = model_config(TRUE_CELL, Xbeam_mm=8.0, Ybeam_mm=8.0)
    target = simulate(truth).numpy() * 7.0
    start = model_config(TRUE_CELL, Xbeam_mm=8.2, Ybeam_mm=7.9, distance_mm=101.0)
    start.crystal.misset_deg = (10.3, 19.7, 30.2)
    names = ["misset_x", "misset_y", "misset_z", "distance", "beam_x", "beam_y"]
    result = refine(start, target, names)
    expected = {"misset_x": 10.0, "misset_y": 20.0, "misset_z": 30.0, "distance": 100.0, "beam_x": 8.0, "beam_y": 8.0}
    for name, value in expected.items():
        assert result.final[name] == pytest.approx(value, abs=1e-3), name
    assert result.final["scale"] == pytest.approx(7.0, rel=1e-4)


def test_each_stage_only_lowers_the_loss():
    target = simulate(model_config(TRUE_CELL)).numpy()
    result = refine(model_config(START_CELL), target, ["cell_a", "cell_gamma"], max_iter=5)
    position = 0
    for stage in result.stages:
        stage_history = result.loss_history[position : position + stage["iterations"] + 1]
        assert all(later <= earlier for earlier, later in itertools.pairwise(stage_history))
        position += stage["iterations"] + 1
    assert position == len(result.loss_history)
    assert all(stage["iterations"] <= 5 for stage in result.stages)


def test_a_coarse_stage_that_does_not_help_is_discarded():
    # Starting at the truth, the GAUSS stand-in pulls the cell away from it; the real model would
    # fit worse there, so the stage's result is thrown away and the truth is kept.
    config = model_config(TRUE_CELL)
    result = refine(config, simulate(config).numpy(), ["cell_a", "cell_b"])
    gauss, _model = result.stages
    assert gauss["name"] == "gauss" and gauss["kept"] is False and gauss["iterations"] > 0
    assert result.final["cell_a"] == pytest.approx(70.0, abs=1e-9)
    assert result.final["cell_b"] == pytest.approx(80.0, abs=1e-9)


def test_automatic_choices_are_frozen_at_the_start():
    config = model_config(TRUE_CELL)
    config.detector.oversample = None
    config.crystal.xtalsize_mm = (0.00035, None, None)  # 350 nm along a: ceil(3500 / 70) = 50 cells
    frozen = freeze_auto_selections(config)
    assert frozen.detector.oversample >= 1 and frozen.crystal.xtalsize_mm == (None, None, None)
    assert frozen.crystal.N == (50.0, 5.0, 5.0)
    assert config.detector.oversample is None  # the caller's configuration is left alone


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(default_F=0.0), "blank"),
        (dict(target=np.zeros((64, 64))), "all zero"),
        (dict(target=np.full((64, 64), np.nan)), "non-finite"),
        (dict(target=np.ones((32, 64))), "does not match"),
        (dict(parameters=["fluence"]), "cannot refine fluence"),
        (dict(parameters=[]), "at least one"),
        (dict(parameters=["cell_a", "cell_x"]), "cell_x"),
        (dict(schedule=("model", "gauss")), "last stage"),
        (dict(schedule=("coarse", "model")), "coarse"),
        (dict(max_iter=0), "max_iter"),
    ],
)
def test_bad_input(change, message):
    config = model_config(START_CELL)
    config.structure.default_F = change.pop("default_F", 100.0)
    arguments = dict(target=np.ones((64, 64)), parameters=["cell_a"])
    arguments.update(change)
    with pytest.raises(InputError, match=message):
        refine(config, arguments.pop("target"), arguments.pop("parameters"), **arguments)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--refine", "cell_a,cell_q"], "--refine: unknown parameter(s) cell_q"),
        (["--refine", "cell_a", "--schedule", "model,gauss"], "--schedule"),
        (["--refine", "cell_a", "--max-iter", "0"], "--max-iter"),
        (["--refine", "cell_a", "--target", "missing.bin"], "--target: cannot read missing.bin"),
        (["--refine", "cell_a", "--target", "small.bin"], "--target: small.bin: 256 pixels do not fill a 64x64 image"),
    ],
)
def test_command_bad_input_exits_2_without_output(target_file, tmp_path, capsys, options, message):
    np.zeros((16, 16), dtype="<f4").tofile(tmp_path / "small.bin")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = ["refine", "--target", str(target_file), "--out", "out.json", *options, "--", *cell_flags(START_CELL)]
    status = cli.main(args)
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no result file, no temporary


# --- many images ---------------------------------------------------------------------------------

STILL_FLAGS = (
    "-cell 70 80 90 75 85 95 -default_F 100 -lambda 1 -N 3 -distance 50 -detpixels 16 -pixel 0.75 -oversample 1"
)


@pytest.fixture
def one_thread():
    """Small images: torch's threads only contend on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_each_images_orientation_is_refined_from_a_manifest(tmp_path, one_thread):
    stills = tmp_path / "stills"
    run_dataset(DatasetSpec(flags=STILL_FLAGS, stills={"frames": 3, "seed": 5}), stills, progress=False)
    truth = read_manifest(stills / "manifest.jsonl")
    start = [dict(entry) for entry in truth]
    for entry in start:  # every still's orientation off by a few tenths of a degree
        entry.update(
            misset_x=entry["misset_x"] + 0.3, misset_y=entry["misset_y"] - 0.2, misset_z=entry["misset_z"] + 0.25
        )
    (stills / "start.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in start))
    out = tmp_path / "result.json"
    args = [
        "--targets",
        str(stills / "start.jsonl"),
        "--per-image",
        "misset_x,misset_y,misset_z",
        "--schedule",
        "model",
    ]
    assert cli.main(["refine", *args, "--out", str(out), "--", *STILL_FLAGS.split()]) == 0

    result = json.loads(out.read_text())
    assert (
        result["converged"]
        and result["parameters"] == []
        and result["per_image"] == ["misset_x", "misset_y", "misset_z"]
    )
    for image, true, first in zip(result["images"], truth, start):
        assert image["target"] == true["file"]
        for name in result["per_image"]:
            assert image["initial"][name] == first[name]
            assert image["final"][name] == pytest.approx(true[name], abs=1e-5), (image["target"], name)
        assert image["final"]["scale"] == pytest.approx(1.0, rel=1e-6)


def test_an_hkl_table_is_read_once_per_refinement_not_per_evaluation(tmp_path, one_thread, monkeypatch):
    import nanobrag.io.hkl as hkl

    monkeypatch.chdir(tmp_path)  # -hkl writes nanoBragg's Fdump.bin cache where the command runs
    table = tmp_path / "P1.hkl"
    rows = itertools.product(range(-5, 6), repeat=3)
    table.write_text("".join(f"{h} {k} {l} {60 + 4 * h - 3 * k + 2 * l}\n" for h, k, l in rows))
    flags = STILL_FLAGS.replace("-default_F 100", f"-hkl {table}") + " -misset 10 20 30"
    series = tmp_path / "series"
    run_dataset(DatasetSpec(flags=flags, rotation={"osc_deg": 1, "frames": 2}), series, progress=False)
    reads = []
    original = hkl.load_structure_factors
    monkeypatch.setattr(hkl, "load_structure_factors", lambda *a, **k: reads.append(1) or original(*a, **k))
    out = tmp_path / "result.json"
    start = flags.replace("-distance 50", "-distance 50.1").split()
    args = ["--targets", str(series), "--refine", "distance", "--schedule", "model", "--out", str(out)]
    assert cli.main(["refine", *args, "--", *start]) == 0
    result = json.loads(out.read_text())
    assert result["final"]["distance"] == pytest.approx(50.0, rel=1e-6)
    evaluations = len(result["loss_history"]) * 2  # at least: one per iteration and image
    # Before fitting: the starting values (once, and per image) and each image's frozen model; then one
    # read for all evaluations of all images.
    assert len(reads) == 1 + 2 * 2 + 1 < evaluations


@pytest.mark.parametrize(
    "spec, options, message",
    [
        ({"sweep": {"distance": [50, 60]}}, ["--refine", "distance"], "distance: set per image by the targets"),
        ({"stills": {"frames": 1}}, ["--refine", "cell_a", "--per-image", "cell_a"], "cell_a: either shared or per"),
        (
            {"stills": {"frames": 1}},
            ["--refine", "cell_a", "--target", "t.bin"],
            "give one or more --target images, or",
        ),
        ({"stills": {"frames": 1}, "output": {"format": "smv"}}, ["--refine", "cell_a"], "SMV frames cannot be fitted"),
        ({"stills": {"frames": 1}}, ["--per-image", "fluence"], "--per-image: cannot refine fluence"),
    ],
)
def test_many_image_bad_input_exits_2(tmp_path, capsys, spec, options, message):
    targets = tmp_path / "targets"
    run_dataset(DatasetSpec(flags=STILL_FLAGS, **spec), targets, progress=False)
    args = [
        "refine",
        "--targets",
        str(targets),
        *options,
        "--out",
        str(tmp_path / "r.json"),
        "--",
        *STILL_FLAGS.split(),
    ]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()
