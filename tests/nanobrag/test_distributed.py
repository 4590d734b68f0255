"""nanobrag dataset and refine as torchrun jobs: two CPU processes (gloo) on small detectors.

Each test starts ``python -m torch.distributed.run --standalone --nproc_per_node 2 -m nanobrag ...``
(torchrun) and checks what the two ranks made against the same work done by one process.
"""

import os

os.environ.setdefault("NANOBRAGG_DISABLE_COMPILE", "1")  # refinement runs the eager path (before nanobrag is imported)

import hashlib
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nanobrag import cli
from nanobrag.dataset import MANIFEST, DatasetSpec, read_manifest, run_dataset
from nanobrag.distributed import restart_advice

pytestmark = pytest.mark.slow

# 16 frames of 32x32 pixels, 2x2 sub-pixels and 2 phi steps: long enough per frame (tens of ms) that a
# worker can be killed while it still has frames to make.
SPEC = {
    "flags": "-cell 70 80 90 75 85 95 -default_F 100 -N 3 -lambda 1.0 -distance 60 -detpixels 32 -pixel 0.4"
    " -oversample 2",
    "rotation": {"start_deg": 0, "osc_deg": 0.5, "frames": 16},
}
TIMEOUT = 600


def torchrun(*args: str, max_restarts: int = 0) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "--max-restarts",
        str(max_restarts),
        "-m",
        "nanobrag",
        *args,
    ]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "NANOBRAGG_DISABLE_COMPILE": "1"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """The frames made by one process (this one)."""
    out = tmp_path_factory.mktemp("single") / "ds"
    run_dataset(DatasetSpec.model_validate(SPEC), out, progress=False)
    return {path.name: path.read_bytes() for path in out.glob("frame_*.bin")}


@pytest.fixture
def spec_file(tmp_path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(SPEC))  # JSON is YAML
    return path


def assert_complete_and_identical(out: Path, reference: dict[str, bytes]) -> list[dict]:
    """Every frame once in the manifest, each byte-identical to the one-process frame; nothing else left."""
    entries = read_manifest(out / MANIFEST)
    assert [entry["frame"] for entry in entries] == list(range(16))
    assert {path.name: path.read_bytes() for path in out.glob("frame_*.bin")} == reference
    for entry in entries:
        assert hashlib.sha256(reference[entry["file"]]).hexdigest() == entry["sha256"]
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp") or p.name.startswith("manifest.part-")]
    assert leftovers == []
    return entries


def test_two_ranks_make_disjoint_halves_of_the_same_frames(tmp_path, spec_file, reference):
    out = tmp_path / "ds"
    run = subprocess.run(
        torchrun("dataset", str(spec_file), "--out", str(out)),
        capture_output=True,
        text=True,
        env=environment(),
        timeout=TIMEOUT,
    )
    assert run.returncode == 0, run.stderr
    entries = assert_complete_and_identical(out, reference)
    by_rank = {rank: [e["frame"] for e in entries if e["rank"] == rank] for rank in (0, 1)}
    assert by_rank == {0: list(range(0, 16, 2)), 1: list(range(1, 16, 2))}
    assert run.stderr.count("dataset: 16 frames in") == 1 and "on 2 ranks" in run.stderr  # rank 0 reports


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc/N/stat: the fields after the command name)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def worker_pid(launcher: subprocess.Popen, rank: int, timeout: float = 120.0) -> int:
    """The process id of the torchrun worker of ``rank`` (a child of the launcher we started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children(launcher.pid):
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in environ:
                return child
        assert launcher.poll() is None, "torchrun ended before its workers were seen"
        time.sleep(0.02)
    raise AssertionError(f"no worker of rank {rank} appeared")


def kill_rank_one_after_its_first_frame(launcher: subprocess.Popen, out: Path) -> None:
    pid = worker_pid(launcher, rank=1)
    part = out / "manifest.part-1.jsonl"
    deadline = time.monotonic() + TIMEOUT
    while not (part.exists() and part.read_bytes().count(b"\n") >= 1):
        assert time.monotonic() < deadline and launcher.poll() is None, "rank 1 made no frame"
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)


def test_a_worker_killed_mid_run_then_a_rerun_completes_the_dataset(tmp_path, spec_file, reference):
    out = tmp_path / "ds"
    command = torchrun("dataset", str(spec_file), "--out", str(out), "--quiet")
    launcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment())
    kill_rank_one_after_its_first_frame(launcher, out)
    _, err = launcher.communicate(timeout=TIMEOUT)
    assert launcher.returncode != 0, err.decode()

    made = {e["frame"]: e for path in out.glob("manifest*.jsonl") for e in read_manifest(path)}
    assert 1 <= sum(e["rank"] == 1 for e in made.values()) < 8  # rank 1 died with frames left to make
    # Damage what the killed run left, as a crash of a non-atomic writer would: a frame it listed is
    # cut short, and a manifest line is cut off.
    listed = out / made[min(made)]["file"]
    listed.write_bytes(listed.read_bytes()[:1000])
    with (out / "manifest.part-0.jsonl").open("a") as part:
        part.write('{"frame": 15, "file": "frame_0000')

    rerun = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=TIMEOUT)
    assert rerun.returncode == 0, rerun.stderr
    assert_complete_and_identical(out, reference)


def test_an_elastic_restart_redoes_the_failed_workers_frames(tmp_path, spec_file, reference):
    out = tmp_path / "ds"
    command = torchrun("dataset", str(spec_file), "--out", str(out), "--quiet", max_restarts=1)
    # A fresh rendezvous store per round: with torch's shared one a restarted worker can read its peer's
    # address from the failed round (see distributed.restart_advice).
    env = {**environment(), "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    launcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    kill_rank_one_after_its_first_frame(launcher, out)
    _, err = launcher.communicate(timeout=TIMEOUT)
    assert launcher.returncode == 0, err.decode()  # the same torchrun job finished after its restart
    assert_complete_and_identical(out, reference)


def test_restarts_with_a_shared_rendezvous_store_get_advice(monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "1")
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in restart_advice()
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "False")  # what that setting gives the workers
    assert restart_advice() is None
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "0")
    assert restart_advice() is None


# --- refinement ----------------------------------------------------------------------------------

TRUE_MODEL = "-cell 70 80 90 75 85 95 -distance 50"
START_MODEL = "-cell 70.14 79.84 90.18 75 85 95 -distance 50.1"  # 0.2% off
COMMON = "-misset 10 20 30 -default_F 100 -lambda 1 -N 3 -detpixels 16 -pixel 0.75 -oversample 1"


def test_two_ranks_refine_a_cell_and_distance_from_8_images_as_one_does(tmp_path):
    targets = tmp_path / "series"
    spec = {"flags": f"{TRUE_MODEL} {COMMON}", "rotation": {"start_deg": 0, "osc_deg": 1, "frames": 8}}
    run_dataset(DatasetSpec.model_validate(spec), targets, progress=False)
    options = ["--targets", str(targets), "--refine", "cell_a,cell_b,cell_c,distance", "--schedule", "model"]
    flags = shlex.split(f"{START_MODEL} {COMMON}")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun worker (small images: threads only contend)
    try:
        assert cli.main(["refine", *options, "--out", str(tmp_path / "one.json"), "--", *flags]) == 0
    finally:
        torch.set_num_threads(threads)
    run = subprocess.run(
        torchrun("refine", *options, "--out", str(tmp_path / "two.json"), "--", *flags),
        capture_output=True,
        text=True,
        env=environment(),
        timeout=TIMEOUT,
    )
    assert run.returncode == 0, run.stderr

    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    truth = {"cell_a": 70.0, "cell_b": 80.0, "cell_c": 90.0, "distance": 50.0}
    assert one["converged"] and two["converged"]
    for name, value in truth.items():
        assert one["final"][name] == pytest.approx(value, rel=1e-6)
        assert two["final"][name] == pytest.approx(one["final"][name], rel=1e-6)
    assert two["iterations"] == one["iterations"] and two["final_loss"] == pytest.approx(one["final_loss"], rel=1e-6)
    assert [image["target"] for image in two["images"]] == [f"frame_{k:06d}.bin" for k in range(8)]
    assert all(image["final"]["scale"] == pytest.approx(1.0, rel=1e-6) for image in two["images"])
    assert run.stderr.count("wrote ") == 1  # rank 0 alone writes the result
