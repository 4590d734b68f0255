"""nanobrag dataset in one process: the spec, frame values, files, manifest and resuming.

Several processes (torchrun) are tested in tests/nanobrag/test_distributed.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex

import numpy as np
import pytest
import torch

from nanobrag import cli
from nanobrag.dataset import (
    MANIFEST,
    Dataset,
    DatasetSpec,
    load_spec,
    read_manifest,
    read_targets,
    run_dataset,
    uniform_rotation,
)
from nanobrag.errors import InputError
from nanobrag.io.hdf5 import iter_shard
from nanobrag.io.smv import read_smv

FLAGS = "-cell 70 80 90 75 85 95 -default_F 100 -N 3 -lambda 1.0 -distance 60 -detpixels 16 -pixel 0.5 -oversample 1"


def make(tmp_path, name="ds", **spec):
    spec.setdefault("flags", FLAGS)
    out = tmp_path / name
    summary = run_dataset(DatasetSpec.model_validate(spec), out, progress=False)
    return out, summary


def manifest(out) -> list[dict]:
    return read_manifest(out / MANIFEST)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def single_image(tmp_path, flags: list[str]) -> bytes:
    """The float image of the ordinary nanobrag command for ``flags``."""
    target = tmp_path / "single.bin"
    argv = [*flags, "-floatfile", str(target), "-intfile", str(tmp_path / "single.img"), "-nopgm", "-nonoise"]
    assert cli.main([*argv, "-quiet"]) == 0
    return target.read_bytes()


# --- the spec ------------------------------------------------------------------------------------


def test_the_issue_example_spec_loads(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        'flags: "-cell 70 80 90 75 85 95 -default_F 100 -N 5 -lambda 1.0 -distance 100 -detpixels 64 -pixel 0.4"\n'
        "rotation: {start_deg: 0, osc_deg: 0.5, frames: 8}\n"
        "output: {format: float}\n"
    )
    spec = load_spec(path)
    assert spec.rotation.frames == 8 and spec.output.format == "float" and not spec.noise.enabled
    dataset = Dataset(spec)
    assert dataset.frame_count == 8 and dataset.config.detector.fpixels == 64
    assert [dataset.values(k)["phi_deg"] for k in (0, 1, 7)] == [0.0, 0.5, 3.5]


@pytest.mark.parametrize(
    "text, message",
    [
        ("flags: '-cell 70'\nrotation: {osc_deg: 1, frames: 2}\nstills: {frames: 2}\n", ":1: spec: give exactly one"),
        ("flags: '-cell 70'\nrotation: {osc_deg: 1, frames: 2, speed: 3}\n", ":2: rotation.speed: Extra inputs"),
        ("flags: '-cell 70'\nstills:\n  frames: 0\n", ":3: stills.frames: Input should be greater"),
        ("flags: '-cell 70'\nsweep:\n  distanse: [1, 2]\n", ":3: sweep: unknown parameter 'distanse'"),
        ("flags: '-cell 70'\nsweep: {distance: {start: 1, stop: 2}}\n", ":2: sweep.distance.count: Field required"),
        ("flags: '-cell 70'\nrotation: {osc_deg: 1, frames: [2\n", "spec.yaml:3:1:"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_specs_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value), str(caught.value)


def test_unknown_sweep_parameter_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown parameter 'distanse'; known: cell_a"):
        DatasetSpec(flags=FLAGS, sweep={"distanse": [1.0]})


def test_bad_flags_are_reported_with_the_spec(tmp_path):
    with pytest.raises(InputError, match=r"spec.yaml: flags: -distance: expected a number, got 'abc'"):
        Dataset(DatasetSpec(flags=FLAGS + " -distance abc", stills={"frames": 1}), "spec.yaml")


def test_command_bad_spec_exits_2_on_one_line(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text("flags: '-cell 70'\n")
    assert cli.main(["dataset", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nanobrag: error: ") and "give exactly one" in err
    assert not (tmp_path / "out").exists()


# --- frames --------------------------------------------------------------------------------------


def test_stills_are_uniform_rotations_reproducible_per_frame():
    first = [uniform_rotation(7, frame) for frame in range(2000)]
    again = uniform_rotation(7, 1234)
    assert np.array_equal(again, first[1234])
    assert not np.allclose(uniform_rotation(8, 1234), again)
    for matrix in first[:50]:
        assert np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-12) and np.linalg.det(matrix) == pytest.approx(1.0)
    # Uniform over SO(3): every entry averages 0 with variance 1/3 (3-sigma bounds for 2000 draws).
    stack = np.stack(first)
    assert np.all(np.abs(stack.mean(axis=0)) < 3 * np.sqrt(1 / 3 / 2000))
    assert np.allclose((stack**2).mean(axis=0), 1 / 3, atol=0.04)


def test_sweep_is_the_product_of_its_parameters_last_fastest():
    dataset = Dataset(
        DatasetSpec(flags=FLAGS, sweep={"distance": {"start": 50, "stop": 70, "count": 3}, "wavelength": [1.0, 1.5]})
    )
    assert dataset.frame_count == 6
    assert [tuple(dataset.values(k).values()) for k in range(6)] == [
        (50.0, 1.0),
        (50.0, 1.5),
        (60.0, 1.0),
        (60.0, 1.5),
        (70.0, 1.0),
        (70.0, 1.5),
    ]


def test_rotation_frames_are_nanobraggs_phi_and_osc_images(tmp_path):
    out, summary = make(tmp_path, rotation={"start_deg": 10, "osc_deg": 0.5, "frames": 3, "phisteps": 3})
    assert (summary.frames, summary.made, summary.already) == (3, 3, 0)
    entries = manifest(out)
    assert [e["frame"] for e in entries] == [0, 1, 2]
    assert entries[2]["phi_deg"] == 11.0 and entries[2]["osc_deg"] == 0.5 and entries[2]["phisteps"] == 3
    assert {"file", "sha256", "device", "kernel", "threads", "seconds", "rank"} <= set(entries[0])
    assert entries[0]["kernel"] in ("eager", "fused") and entries[0]["threads"] == torch.get_num_threads()
    flags = shlex.split(FLAGS) + ["-phi", "11", "-osc", "0.5", "-phisteps", "3"]
    assert (out / entries[2]["file"]).read_bytes() == single_image(tmp_path, flags)
    assert all(sha256(out / e["file"]) == e["sha256"] for e in entries)


def test_still_frames_are_the_misset_images_the_manifest_records(tmp_path):
    out, _ = make(tmp_path, stills={"frames": 2, "seed": 3})
    entry = manifest(out)[1]
    angles = [repr(entry[name]) for name in ("misset_x", "misset_y", "misset_z")]
    assert (out / entry["file"]).read_bytes() == single_image(tmp_path, [*shlex.split(FLAGS), "-misset", *angles])


def test_sweep_frames_match_the_single_image_command(tmp_path):
    out, _ = make(tmp_path, sweep={"distance": [55.0, 65.0]})
    entry = manifest(out)[1]
    assert entry["distance"] == 65.0
    flags = shlex.split(FLAGS.replace("-distance 60", "-distance 65"))
    assert (out / entry["file"]).read_bytes() == single_image(tmp_path, flags)


def test_frames_with_an_hkl_table_match_the_single_image_command_and_read_it_once(tmp_path, monkeypatch):
    import nanobrag.io.hkl as hkl

    monkeypatch.chdir(tmp_path)  # the single-image command writes nanoBragg's Fdump.bin cache where it runs
    table = tmp_path / "P1.hkl"
    rows = [(h, k, l) for h in range(-4, 5) for k in range(-4, 5) for l in range(-4, 5)]
    table.write_text("".join(f"{h} {k} {l} {50 + 3 * h - 2 * k + l}\n" for h, k, l in rows))
    reads = []
    original = hkl.load_structure_factors
    monkeypatch.setattr(hkl, "load_structure_factors", lambda *a, **k: reads.append(1) or original(*a, **k))
    flags = FLAGS.replace("-default_F 100", f"-hkl {table}")
    out, _ = make(tmp_path, flags=flags, rotation={"start_deg": 5, "osc_deg": 1, "frames": 3})
    assert len(reads) == 1  # once for the run, not once per frame
    monkeypatch.setattr(hkl, "load_structure_factors", original)
    assert (out / "frame_000002.bin").read_bytes() == single_image(
        tmp_path, [*shlex.split(flags), "-phi", "7", "-osc", "1"]
    )
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("frame_")) == [
        ".lock",
        "dataset.json",
        MANIFEST,
    ]


def test_smv_frames_with_noise_carry_per_frame_seeds(tmp_path):
    spec = dict(stills={"frames": 2, "seed": 1}, noise={"enabled": True, "seed": 40}, output={"format": "smv"})
    out, _ = make(tmp_path, **spec)
    entries = manifest(out)
    assert [e["seed"] for e in entries] == [40, 41] and entries[0]["file"] == "frame_000000.img"
    header, pixels = read_smv(out / entries[0]["file"])
    assert header["SIZE1"] == "16" and pixels.dtype == np.uint16 and pixels.max() >= 40
    again, _ = make(tmp_path, "again", **spec)
    assert [e["sha256"] for e in manifest(again)] == [e["sha256"] for e in entries]  # seeds make them repeat


def test_noise_frames_are_the_single_image_noise_file_and_follow_the_noise_engine(tmp_path):
    rotation = {"start_deg": 0, "osc_deg": 1, "frames": 2}
    spec = dict(rotation=rotation, noise={"enabled": True, "seed": 40}, output={"format": "smv"})
    out, _ = make(tmp_path, **spec)
    noisefile = tmp_path / "single_noise.img"
    argv = [*shlex.split(FLAGS), "-phi", "1", "-osc", "1", "-seed", "41", "-noisefile", str(noisefile)]
    assert (
        cli.main(
            [*argv, "-floatfile", str(tmp_path / "f.bin"), "-intfile", str(tmp_path / "i.img"), "-nopgm", "-quiet"]
        )
        == 0
    )
    assert (out / "frame_000001.img").read_bytes() == noisefile.read_bytes()
    engine = dict(spec, flags=FLAGS + " -noise_engine torch")
    torch_noise, _ = make(tmp_path, "torch", **engine)
    again, _ = make(tmp_path, "torch-again", **engine)
    digests = [e["sha256"] for e in manifest(torch_noise)]
    assert digests == [e["sha256"] for e in manifest(again)] and digests != [e["sha256"] for e in manifest(out)]


def test_hdf5_shards_hold_the_float_frames(tmp_path):
    rotation = {"start_deg": 0, "osc_deg": 1, "frames": 5}
    floats, _ = make(tmp_path, "float", rotation=rotation)
    shards, _ = make(tmp_path, "hdf5", rotation=rotation, output={"format": "hdf5", "frames_per_file": 2})
    entries = manifest(shards)
    assert [(e["file"], e["index"]) for e in entries] == [
        ("shard_00000.h5", 0),
        ("shard_00000.h5", 1),
        ("shard_00001.h5", 0),
        ("shard_00001.h5", 1),
        ("shard_00002.h5", 0),
    ]
    frames, images = zip(*iter_shard(shards / "shard_00001.h5"))
    assert frames == (2, 3) and np.stack(images).shape == (2, 16, 16) and images[0].dtype == np.float32
    for entry in entries:
        image = dict(iter_shard(shards / entry["file"]))[entry["frame"]]
        assert image.tobytes() == (floats / f"frame_{entry['frame']:06d}.bin").read_bytes()
        assert hashlib.sha256(image.tobytes()).hexdigest() == entry["sha256"]
    # Refinement reads the same images back, with each frame's values.
    for entry, target, reference in zip(entries, read_targets(shards), read_targets(floats)):
        assert target.name == f"{entry['file']}[{entry['index']}]" and target.values == reference.values
        assert target.load((16, 16)).tobytes() == reference.load((16, 16)).tobytes()


# --- resuming ------------------------------------------------------------------------------------


def test_a_rerun_redoes_exactly_the_missing_and_damaged_frames(tmp_path):
    rotation = {"start_deg": 0, "osc_deg": 1, "frames": 6}
    out, _ = make(tmp_path, rotation=rotation)
    reference = {path.name: path.read_bytes() for path in out.glob("frame_*")}
    entries = manifest(out)
    # Damage: a truncated frame (listed), a frame whose line is missing, a frame whose file is gone,
    # a stale temporary from a killed writer, and a manifest line cut short.
    (out / "frame_000001.bin").write_bytes(reference["frame_000001.bin"][:100])
    (out / "frame_000004.bin").unlink()
    (out / ".frame_000005.bin.0123456789ab.tmp").write_bytes(b"half")
    lines = [json.dumps(e) for e in entries if e["frame"] != 2]
    (out / MANIFEST).write_text("\n".join(lines) + "\n" + json.dumps(entries[2])[:40])
    mtimes = {path.name: path.stat().st_mtime_ns for path in out.glob("frame_*")}

    summary = run_dataset(DatasetSpec(flags=FLAGS, rotation=rotation), out, progress=False)
    assert (summary.made, summary.already) == (3, 3)
    assert {path.name: path.read_bytes() for path in out.glob("frame_*")} == reference
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".lock") == []
    assert [e["frame"] for e in manifest(out)] == list(range(6))
    untouched = [name for name in mtimes if out.joinpath(name).stat().st_mtime_ns == mtimes[name]]
    assert sorted(untouched) == ["frame_000000.bin", "frame_000003.bin", "frame_000005.bin"]


def test_a_damaged_hdf5_shard_is_made_again_whole(tmp_path):
    spec = dict(rotation={"start_deg": 0, "osc_deg": 1, "frames": 4}, output={"format": "hdf5", "frames_per_file": 2})
    out, _ = make(tmp_path, **spec)
    reference = (out / "shard_00001.h5").read_bytes()
    (out / "shard_00001.h5").write_bytes(reference[: len(reference) // 2])
    _, summary = make(tmp_path, **spec)
    assert (summary.made, summary.already) == (2, 2)
    assert (out / "shard_00001.h5").read_bytes() == reference


def test_another_spec_or_a_foreign_directory_is_refused(tmp_path):
    make(tmp_path, stills={"frames": 1})
    assert make(tmp_path, stills={"frames": 1}, batch=4)[1].already == 1  # batch changes no frame
    with pytest.raises(InputError, match="made from another spec"):
        make(tmp_path, stills={"frames": 2})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty and not a nanobrag dataset"):
        make(tmp_path, "other", stills={"frames": 1})


def test_a_directory_being_written_is_refused(tmp_path):
    out, _ = make(tmp_path, stills={"frames": 1})
    fd = os.open(out / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(InputError, match="another nanobrag dataset run is writing there"):
            make(tmp_path, stills={"frames": 1})
    finally:
        os.close(fd)


def test_python_dash_m_runs_the_command(tmp_path):
    import subprocess
    import sys

    spec = tmp_path / "spec.yaml"
    spec.write_text(f"flags: '{FLAGS}'\nstills: {{frames: 2}}\n")
    run = subprocess.run(
        [sys.executable, "-m", "nanobrag", "dataset", str(spec), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "dataset: 2 frames in" in run.stderr and "2 made now" in run.stderr
    assert [e["frame"] for e in manifest(tmp_path / "out")] == [0, 1]


def test_progress_counts_every_ranks_finished_lines(tmp_path, capsys):
    from nanobrag.dataset.run import _Progress

    (tmp_path / "manifest.part-0.jsonl").write_text('{"frame": 0}\n{"frame": 2}\n')
    (tmp_path / "manifest.part-1.jsonl").write_text('{"frame": 1}\n{"frame": 3')  # a line being written
    progress = _Progress(tmp_path, total=10, already=4, report_every=0.0)
    progress._poll()
    with (tmp_path / "manifest.part-1.jsonl").open("a") as part:
        part.write("}\n")
    progress._poll()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["dataset: 7/10 frames", "dataset: 8/10 frames"]


def test_the_command_passes_on_the_flags_warnings(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"flags: '{FLAGS} -hdiv 0'\nstills: {{frames: 1}}\n")
    assert cli.main(["dataset", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("nanobrag: warning: -hdiv: not a nanoBragg option; ignored")
    assert err[1].startswith(f"dataset: 1 frame in {tmp_path / 'out'} (1 made now)")


def test_auto_kernel_weighs_the_whole_run_and_eager_or_fused_are_kept(monkeypatch):
    import nanobrag.compiled as compiled
    from nanobrag.frames import choose_kernel

    monkeypatch.delenv("NANOBRAGG_DISABLE_COMPILE", raising=False)
    monkeypatch.setenv("NANOBRAG_CACHE_DIR", "/nonexistent-nanobrag-cache")  # no kernel cached: nothing is built
    monkeypatch.setattr(compiled, "compiler_missing", lambda device: None)
    setup = Dataset(DatasetSpec(flags=FLAGS, stills={"frames": 1})).setup(0, "cpu")
    one_frame = 16 * 16 * setup.oversample**2  # evaluations: pixels x sub-pixels (one source, orientation, layer)
    monkeypatch.setattr(compiled, "AUTO_BUILD_EVALUATIONS", 100 * one_frame)
    assert choose_kernel(setup, "auto", 99) == "eager"  # not worth building a kernel
    assert choose_kernel(setup, "auto", 100) == "fused"  # the run pays for it
    assert choose_kernel(setup, "eager", 10**6) == "eager" and choose_kernel(setup, "fused", 1) == "fused"


def test_a_rotation_dataset_imports_no_compiler_and_no_numba(tmp_path):
    import subprocess
    import sys

    (tmp_path / "spec.yaml").write_text(f"flags: '{FLAGS}'\nrotation: {{osc_deg: 1, frames: 1}}\n")
    program = (
        "import sys\nfrom nanobrag.cli import main\n"
        "code = main(['dataset', 'spec.yaml', '--out', 'out', '--quiet'])\n"
        "print(code, *[m for m in ('numba', 'sympy', 'torch._dynamo', 'torch._inductor') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines()[-1] == "0", done.stderr  # exit status 0 and none of the heavy modules


def test_eager_frames_rendered_in_batches_are_bit_for_bit_their_single_renders(tmp_path, monkeypatch):
    import nanobrag.frames as frames
    from nanobrag.frames import _batches, render_frames
    from nanobrag.renderer import render

    batched = []
    original = frames.render_batch
    monkeypatch.setattr(frames, "render_batch", lambda group: batched.append(len(group)) or original(group))

    flags = f"{FLAGS} -mosaic_domains 2 -kernel eager"
    dataset = Dataset(DatasetSpec(flags=flags, sweep={"mosaic_spread": [0.0, 0.5, 0.7], "misset_x": [0.0, 10.0]}))
    setups = [dataset.setup(frame, "cpu") for frame in range(dataset.frame_count)]
    # No spread means one domain: frames 0 and 1 cannot share a batch with the others.
    assert [len(group) for group in _batches(setups)] == [2, 4]
    singly = [render(setup, kernel="eager").float() for setup in setups]
    assert all(torch.equal(a, b) for a, b in zip(render_frames(setups, kernel="eager"), singly))
    assert batched == [2, 4]  # two kernel passes for six frames
    one, _ = make(tmp_path, "one", flags=flags, stills={"frames": 4}, batch=1)
    four, _ = make(tmp_path, "four", flags=flags, stills={"frames": 4}, batch=4)
    assert [e["sha256"] for e in manifest(one)] == [e["sha256"] for e in manifest(four)]
