"""Running a dataset: prepare the directory, verify what exists, make what is missing, merge the manifest.

One process, or one rank of a torchrun job: the ranks share the remaining work units, check the
existing frames in parallel, and rank 0 merges the manifest and shows one progress display.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..config import OutputConfig
from ..distributed import World, joined, rank_device
from ..errors import InputError
from ..flags import RunOptions
from ..frames import choose_kernel, load_kernels, render_frames, smv_header
from ..io.files import Data, is_staged_temporary, write_bytes_atomic
from ..io.hdf5 import shard_writer
from ..io.images import float_image_bytes
from ..io.smv import int_image, smv_parts
from ..progress import ProgressDisplay
from ..setup import Setup
from ..threads import configure_threads
from .manifest import MANIFEST, ManifestPart, complete_entries, part_files, read_manifest, sha256, write_manifest
from .spec import Dataset, DatasetSpec

SPEC_RECORD = "dataset.json"


def frame_pixels(
    image: np.ndarray, setup: Setup, noise_seed: int | None, outputs: OutputConfig, options: RunOptions
) -> np.ndarray:
    """The frame as stored: float32 photons, or with noise nanoBragg's noise-image counts (uint16) drawn by
    the flags' -noise_engine."""
    if noise_seed is None:
        return np.ascontiguousarray(image, dtype="<f4")
    from ..noise import noise_image  # its generator loads numba: only datasets with noise need it

    pixels, _photons, _overloads = noise_image(
        image, noise_seed, outputs.adc_offset, setup.roi, options.noise_engine, device=str(setup.device)
    )
    return np.ascontiguousarray(pixels, dtype="<u2")


def frame_file_data(fmt: str, pixels: np.ndarray, setup: Setup, outputs: OutputConfig) -> Data:
    """A float or SMV frame file: raw float32 (noise counts as float32), or nanoBragg's int or noise SMV image."""
    if fmt == "float":
        return float_image_bytes(pixels)
    if pixels.dtype.kind == "u":
        return smv_parts(pixels, smv_header(setup), "noise")
    counts, _scale = int_image(pixels, outputs.intfile_scale, outputs.adc_offset, setup.roi)
    return smv_parts(counts, smv_header(setup), "int")


class _Progress:
    """Rank 0's display of the whole dataset: it counts the lines every rank appends to its manifest part.

    On a terminal, nanobrag's progress bar (frames made in this run); elsewhere (SLURM, CI logs) a line
    every ``report_every`` seconds.
    """

    def __init__(self, out: Path, total: int, already: int, interval: float = 0.5, report_every: float = 10.0) -> None:
        self.out, self.total, self.already, self.interval = out, total, already, interval
        self.report_every = report_every
        self._offsets: dict[Path, int] = {}
        self._lines = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="nanobrag-dataset-progress", daemon=True)
        self._start = self._last_line = time.monotonic()
        label = f"dataset ({already} already complete)" if already else "dataset"
        bar = ProgressDisplay(label, "frames")  # enabled on a terminal only
        self._bar = bar if bar.enabled else None

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.__enter__()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        if self._bar is not None:
            self._poll()
            self._bar.__exit__(kind, value, tb)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def _poll(self) -> None:
        for path in part_files(self.out):
            try:
                with path.open("rb") as handle:
                    handle.seek(self._offsets.get(path, 0))
                    chunk = handle.read()
            except OSError:
                continue
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._offsets[path] = self._offsets.get(path, 0) + len(complete)
            self._lines += complete.count(b"\n")
        made = min(self.total - self.already, self._lines)
        if self._bar is not None:
            self._bar(made, self.total - self.already)
            return
        now = time.monotonic()
        if now - self._last_line >= self.report_every:
            self._last_line = now
            rate = made / max(now - self._start, 1e-9)
            print(
                f"dataset: {self.already + made}/{self.total} frames, {rate:.3g} frames/s", file=sys.stderr, flush=True
            )


@dataclass
class DatasetSummary:
    frames: int
    made: int
    already: int
    seconds: float
    world_size: int


def run_dataset(
    spec: DatasetSpec, out: str | os.PathLike[str], *, source: str = "spec", progress: bool = True
) -> DatasetSummary:
    """Make every frame of ``spec`` that ``out`` does not already hold complete; returns what was done.

    Runs as one process, or as one rank of a torchrun job (the ranks share the work and rank 0 merges
    the manifest). Every rank gets the same summary.
    """
    started = time.monotonic()
    dataset = Dataset(spec, source)
    out = Path(out)
    device = rank_device(dataset.options.device)
    configure_threads(dataset.options.threads)
    first = dataset.setup(0, device)  # bad settings fail here, on every rank alike, before any process waits on another
    batch = spec.batch or (8 if device.type == "cuda" else 1)
    with joined(device) as world:
        lock = _prepare(dataset, out, world, source)
        try:
            complete = _verified(dataset, out, world)
            if world.is_root:
                write_manifest(out, [entry for unit in sorted(complete) for entry in complete[unit]])
            world.barrier()  # parts are cleared before any rank appends to its own
            todo = [unit for unit in range(len(dataset.units)) if unit not in complete]
            already = dataset.frame_count - sum(len(dataset.units[unit]) for unit in todo)
            kernel = _run_kernel(dataset, first, world, dataset.frame_count - already)
            part = ManifestPart(out / f"manifest.part-{world.rank}.jsonl")
            display = _Progress(out, dataset.frame_count, already) if (world.is_root and progress) else None
            with display or contextlib.nullcontext():
                for units in _groups(world.shard(todo), batch, dataset):
                    part.append(_make_units(dataset, out, units, device, world, batch, kernel))
            world.barrier()  # every rank has appended its last line
            if world.is_root:
                _merge(dataset, out)
        finally:
            if lock is not None:
                os.close(lock)
    return DatasetSummary(
        frames=dataset.frame_count,
        made=dataset.frame_count - already,
        already=already,
        seconds=time.monotonic() - started,
        world_size=world.size,
    )


def _run_kernel(dataset: Dataset, first: Setup, world: World, frames: int) -> str:
    """How every frame of this run is evaluated: rank 0 chooses for all (so a frame's bytes do not depend on
    the rank that makes it), and where that is a compiled kernel, one rank per machine builds any missing
    one before the others load it."""
    kernel = world.broadcast(choose_kernel(first, dataset.options.kernel, frames) if world.is_root else None)
    if kernel == "fused" and frames:
        if world.local_rank == 0:
            load_kernels(first)
        world.barrier()
    return kernel


def _prepare(dataset: Dataset, out: Path, world: World, source: str) -> int | None:
    """Rank 0: create ``out``, lock it, check or write dataset.json, remove a killed run's temporaries.

    Returns the lock's file descriptor (rank 0). A problem found by rank 0 is raised on every rank.
    """
    lock, problem = None, None
    if world.is_root:
        try:
            lock = _lock(out)
            _check_record(dataset, out, source)
            for path in out.iterdir():
                if is_staged_temporary(path.name) and path.is_file():
                    path.unlink()
        except InputError as err:
            problem = str(err)
            if lock is not None:
                os.close(lock)
                lock = None
    problem = world.broadcast(problem)
    if problem is not None:
        raise InputError(problem)
    return lock


def _lock(out: Path) -> int:
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise InputError(f"--out {out}: {err.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise InputError(f"--out {out}: another nanobrag dataset run is writing there") from None
    return fd


def _check_record(dataset: Dataset, out: Path, source: str) -> None:
    path = out / SPEC_RECORD
    record = dataset.record()
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: unreadable ({err}); is {out} a nanobrag dataset?") from None
        if stored.get("spec") != record["spec"]:
            raise InputError(f"--out {out}: made from another spec than {source}; choose a new directory")
        return
    if any(p.name != ".lock" for p in out.iterdir()):
        raise InputError(f"--out {out}: not empty and not a nanobrag dataset")
    write_bytes_atomic(path, (json.dumps(record, indent=2) + "\n").encode())


def _verified(dataset: Dataset, out: Path, world: World) -> dict[int, list[dict[str, Any]]]:
    """The units the directory proves complete, with their manifest entries; each rank checks a share."""
    by_unit: dict[int, list[dict[str, Any]]] = {}
    for path in [out / MANIFEST, *part_files(out)]:
        for entry in read_manifest(path):
            if 0 <= entry["frame"] < dataset.frame_count:
                by_unit.setdefault(dataset.unit_of(entry["frame"]), []).append(entry)
    mine = {}
    for unit in world.shard(sorted(by_unit)):
        entries = complete_entries(dataset, out, unit, by_unit[unit])
        if entries is not None:
            mine[unit] = entries
    complete: dict[int, list[dict[str, Any]]] = {}
    for share in world.all_gather(mine):
        complete.update(share)
    return complete


def _merge(dataset: Dataset, out: Path) -> None:
    """Rank 0 at the end: the manifest plus every part, one entry per frame (the latest); all frames present."""
    latest: dict[int, dict[str, Any]] = {}
    for path in [out / MANIFEST, *part_files(out)]:
        for entry in read_manifest(path):
            latest[entry["frame"]] = entry
    missing = [frame for frame in range(dataset.frame_count) if frame not in latest]
    if missing:
        raise InputError(f"{out}: frames {missing[:5]} missing after the run; run the command again to make them")
    write_manifest(out, list(latest.values()))


def _groups(units: list[int], batch: int, dataset: Dataset) -> Iterator[list[int]]:
    """Units to make together: ``batch`` single-frame units per render call; an HDF5 shard alone."""
    if dataset.spec.output.format == "hdf5":
        yield from ([unit] for unit in units)
        return
    for start in range(0, len(units), batch):
        yield units[start : start + batch]


def _make_units(
    dataset: Dataset, out: Path, units: list[int], device: torch.device, world: World, batch: int, kernel: str
) -> list[dict[str, Any]]:
    """Render, encode and write ``units``; returns their manifest entries (to append once the files exist)."""
    fmt = dataset.spec.output.format
    frames = [frame for unit in units for frame in dataset.units[unit]]
    started = time.monotonic()
    rendered = _rendered(dataset, frames, device, batch, kernel)
    digests = {}
    if fmt == "hdf5":
        (unit,) = units  # a shard is made alone
        values = [dataset.expected_entry(frame) for frame in frames]
        parameters = {
            key: [entry[key] for entry in values] for key in values[0] if key not in ("frame", "file", "index")
        }
        attributes = {"nanobrag": __version__, "spec": json.dumps(dataset.record()["spec"])}
        noisy = dataset.noise_seed(frames[0]) is not None
        path, dtype = out / dataset.file_name(unit), "<u2" if noisy else "<f4"
        with shard_writer(path, frames, dataset.image_shape, dtype, parameters, attributes) as images:
            for position, (frame, _setup, pixels) in enumerate(rendered):
                images[position] = pixels
                digests[frame] = sha256(memoryview(pixels.data).cast("B"))
    else:
        for frame, setup, pixels in rendered:
            data = frame_file_data(fmt, pixels, setup, dataset.outputs)
            write_bytes_atomic(out / dataset.file_name(dataset.unit_of(frame)), data)
            digests[frame] = sha256(data)
    seconds = round((time.monotonic() - started) / len(frames), 6)
    threads = torch.get_num_threads() if device.type == "cpu" else None
    entries = []
    for frame in frames:
        entry = dataset.expected_entry(frame)
        entry.update(sha256=digests[frame], device=str(device), kernel=kernel, threads=threads, rank=world.rank)
        entry["seconds"] = seconds
        entries.append(entry)
    return entries


def _rendered(
    dataset: Dataset, frames: list[int], device: torch.device, batch: int, kernel: str
) -> Iterator[tuple[int, Setup, np.ndarray]]:
    """(frame, its setup, its pixels as stored) of each of ``frames``, rendered ``batch`` at a time."""
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        setups = [dataset.setup(frame, device) for frame in chunk]
        for frame, setup, image in zip(chunk, setups, render_frames(setups, kernel=kernel)):
            yield (
                frame,
                setup,
                frame_pixels(image.numpy(), setup, dataset.noise_seed(frame), dataset.outputs, dataset.options),
            )


def describe(summary: DatasetSummary, out: Path) -> str:
    made = f"{summary.made} made now" + (f", {summary.already} already complete" if summary.already else "")
    rate = summary.made / summary.seconds if summary.seconds > 0 else 0.0
    ranks = f" on {summary.world_size} ranks" if summary.world_size > 1 else ""
    frames = f"{summary.frames} frame{'s' if summary.frames != 1 else ''}"
    return f"dataset: {frames} in {out} ({made}){ranks}, {summary.seconds:.1f} s, {rate:.3g} frames/s"
