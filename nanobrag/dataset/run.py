"""Running a dataset: prepare the directory, verify what exists, make what is missing, merge the manifest.

One process, or one rank of a torchrun job: the ranks share the remaining work units, check the
existing frames in parallel, and rank 0 merges the manifest and shows one progress display.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..config import OutputConfig
from ..distributed import World, joined, rank_device
from ..errors import InputError
from ..frames import render_frames, smv_header
from ..io.files import write_bytes_atomic
from ..io.hdf5 import write_shard
from ..io.images import float_image_bytes
from ..io.smv import int_image, smv_bytes
from ..noise import noise_image
from ..setup import Setup
from .manifest import MANIFEST, ManifestPart, complete_entries, part_files, read_manifest, sha256, write_manifest
from .spec import Dataset, DatasetSpec

SPEC_RECORD = "dataset.json"
# StagedOutputs' temporary names: ".<final name>.<12 hex digits>.tmp"
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")


def frame_pixels(image: np.ndarray, setup: Setup, noise_seed: int | None, outputs: OutputConfig) -> np.ndarray:
    """The frame as stored: float32 photons, or with noise nanoBragg's noise-image counts (uint16)."""
    if noise_seed is None:
        return np.ascontiguousarray(image, dtype="<f4")
    pixels, _photons, _overloads = noise_image(image, noise_seed, outputs.adc_offset, setup.roi)
    return np.ascontiguousarray(pixels, dtype="<u2")


def frame_file_bytes(fmt: str, pixels: np.ndarray, setup: Setup, outputs: OutputConfig) -> bytes:
    """A float or SMV frame file: raw float32 (noise counts as float32), or nanoBragg's int or noise SMV image."""
    if fmt == "float":
        return float_image_bytes(pixels)
    if pixels.dtype.kind == "u":
        return smv_bytes(pixels, smv_header(setup), "noise")
    counts, _scale = int_image(pixels, outputs.intfile_scale, outputs.adc_offset, setup.roi)
    return smv_bytes(counts, smv_header(setup), "int")


class _Progress:
    """Rank 0's display of the whole dataset: it counts the lines every rank appends to its manifest part."""

    def __init__(self, out: Path, total: int, already: int, interval: float = 0.5, report_every: float = 10.0) -> None:
        self.out, self.total, self.already, self.interval = out, total, already, interval
        self.report_every = report_every  # seconds between lines when stderr is not a terminal (SLURM, CI)
        self._offsets: dict[Path, int] = {}
        self._lines = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._start = time.monotonic()
        self._bar = None
        self._last_line = self._start
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("dataset"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("frames"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task("dataset", total=total, completed=already)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self._bar is not None:
            self._poll()
            self._bar.stop()

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
        done = min(self.total, self.already + self._lines)
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
            return
        now = time.monotonic()
        if now - self._last_line >= self.report_every:
            self._last_line = now
            rate = self._lines / max(now - self._start, 1e-9)
            print(f"dataset: {done}/{self.total} frames, {rate:.3g} frames/s", file=sys.stderr, flush=True)


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
    dataset.setup(0, device)  # bad settings fail here, on every rank alike, before any process waits on another
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
            part = ManifestPart(out / f"manifest.part-{world.rank}.jsonl")
            display = _Progress(out, dataset.frame_count, already) if (world.is_root and progress) else None
            with display or contextlib.nullcontext():
                for units in _groups(world.shard(todo), batch, dataset):
                    part.append(_make_units(dataset, out, units, device, world, batch))
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
                if _TEMPORARY.fullmatch(path.name) and path.is_file():
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
    dataset: Dataset, out: Path, units: list[int], device: torch.device, world: World, batch: int
) -> list[dict[str, Any]]:
    """Render, encode and write ``units``; returns their manifest entries (to append once the files exist)."""
    fmt = dataset.spec.output.format
    frames = [frame for unit in units for frame in dataset.units[unit]]
    entries, pixels_by_frame, setups_by_frame = [], {}, {}
    started = time.monotonic()
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        setups = [dataset.setup(frame, device) for frame in chunk]
        images = render_frames(setups, compile=dataset.options.compile)
        for frame, setup, image in zip(chunk, setups, images):
            pixels_by_frame[frame] = frame_pixels(image.numpy(), setup, dataset.noise_seed(frame), dataset.outputs)
            setups_by_frame[frame] = setup
    for unit in units:
        unit_frames = dataset.units[unit]
        path = out / dataset.file_name(unit)
        if fmt == "hdf5":
            stack = np.stack([pixels_by_frame[frame] for frame in unit_frames])
            values = [dataset.expected_entry(frame) for frame in unit_frames]
            parameters = {
                key: [entry[key] for entry in values] for key in values[0] if key not in ("frame", "file", "index")
            }
            attributes = {"nanobrag": __version__, "spec": json.dumps(dataset.record()["spec"])}
            write_shard(path, stack, unit_frames, parameters, attributes)
            digests = {frame: sha256(pixels_by_frame[frame].tobytes()) for frame in unit_frames}
        else:
            frame = unit_frames[0]
            data = frame_file_bytes(fmt, pixels_by_frame[frame], setups_by_frame[frame], dataset.outputs)
            write_bytes_atomic(path, data)
            digests = {frame: sha256(data)}
        for frame in unit_frames:
            entry = dataset.expected_entry(frame)
            entry["sha256"] = digests[frame]
            entries.append(entry)
    seconds = (time.monotonic() - started) / len(frames)
    for entry in entries:
        entry.update(device=str(device), rank=world.rank, seconds=round(seconds, 6))
    return entries


def describe(summary: DatasetSummary, out: Path) -> str:
    made = f"{summary.made} made now" + (f", {summary.already} already complete" if summary.already else "")
    rate = summary.made / summary.seconds if summary.seconds > 0 else 0.0
    ranks = f" on {summary.world_size} ranks" if summary.world_size > 1 else ""
    frames = f"{summary.frames} frame{'s' if summary.frames != 1 else ''}"
    return f"dataset: {frames} in {out} ({made}){ranks}, {summary.seconds:.1f} s, {rate:.3g} frames/s"
