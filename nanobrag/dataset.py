"""Datasets: many frames of one simulation, described by a YAML spec and written resumably by one or many processes.

A spec (:class:`DatasetSpec`) holds the base simulation as nanoBragg flags and one way of varying it
from frame to frame: a rotation series (nanoBragg's own ``-phi``/``-osc`` per frame), random stills
(a uniform random orientation per frame, applied as misset angles) or a sweep over continuous
parameters (a list or an even grid per parameter; several parameters make their product). Frame
``i`` is a pure function of the spec and ``i``: its values (:meth:`Dataset.values`), its noise seed
and so its bytes do not depend on which process makes it, or when.

The output directory holds:

- ``dataset.json``: the spec it was made from (a rerun with another spec is refused);
- ``manifest.jsonl``: one JSON object per complete frame, in frame order: ``frame``, ``file``
  (``index``, its position in an HDF5 shard), ``sha256``, every per-frame value, ``seed`` (with
  noise), the ``device`` and ``rank`` that made it and the ``seconds`` it took;
- ``manifest.part-R.jsonl``: the lines rank R appends while a run is under way; rank 0 merges them
  into ``manifest.jsonl`` at the end (and at the start of a rerun);
- the frames: ``frame_000000.bin`` (float), ``frame_000000.img`` (SMV) or ``shard_00000.h5``
  (``frames_per_file`` frames each; see :mod:`nanobrag.io.hdf5`).

Resuming: a frame counts as complete only when a manifest line names its file (and position) and its
values, and the file's content has the recorded sha256 (for HDF5, the frame's pixel bytes). Files are
written under a temporary name and renamed; a frame's manifest line is appended only once its file is
in place. So a killed run never leaves a truncated frame counted as done, and a rerun makes exactly
the frames that are missing or damaged (an HDF5 shard is made again as a whole).

Processes: under ``torchrun`` the work units (a frame, or an HDF5 shard) that remain are dealt out
by rank (:meth:`nanobrag.distributed.World.shard`). Ranks check the existing frames in parallel,
rank 0 merges the manifest and shows one progress display for the whole dataset, which it reads
from the ranks' manifest parts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import shlex
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from . import __version__
from .config import OutputConfig, SimulationConfig
from .distributed import World, joined, rank_device
from .errors import InputError
from .flags import RunOptions, parse_flags
from .frames import render_frames, smv_header
from .io.files import read_input_bytes, write_bytes_atomic
from .io.images import float_image_bytes, read_float_image
from .io.smv import int_image, smv_bytes
from .noise import noise_image
from .rng import umat2misset
from .setup import PARAMETERS, Setup, build_setup

MANIFEST = "manifest.jsonl"
SPEC_RECORD = "dataset.json"
_PART = re.compile(r"manifest\.part-(\d+)\.jsonl")
# StagedOutputs' temporary names: ".<final name>.<12 hex digits>.tmp"
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")

# Per-frame values that set the crystal's configuration (nanoBragg's -phi, -osc, -phisteps); every
# other per-frame value is a parameter of nanobrag.setup.PARAMETERS.
FRAME_SETTINGS = {"phi_deg": "phi0_deg", "osc_deg": "osc_deg", "phisteps": "phisteps"}


# ---------------------------------------------------------------------------------------------
# The spec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RotationSpec(_Strict):
    """A rotation series: frame i spans phi = start_deg + i*osc_deg to that plus osc_deg."""

    start_deg: float = 0.0
    osc_deg: float = Field(gt=0)
    frames: int = Field(ge=1)
    phisteps: int | None = Field(None, ge=1, description="phi steps per frame (nanoBragg's -phisteps)")


class StillsSpec(_Strict):
    """Stills in orientations drawn uniformly over SO(3), reproducibly per (seed, frame)."""

    frames: int = Field(ge=1)
    seed: int = 0


class GridSpec(_Strict):
    """``count`` evenly spaced values from ``start`` to ``stop``, both included."""

    start: float
    stop: float
    count: int = Field(ge=1)

    def values(self) -> list[float]:
        if self.count == 1:
            return [self.start]
        return [self.start + (self.stop - self.start) * j / (self.count - 1) for j in range(self.count)]


class NoiseSpec(_Strict):
    """nanoBragg's Poisson noise image per frame, with seed ``seed + frame``."""

    enabled: bool = False
    seed: int = Field(1, ge=1)


class OutputSpec(_Strict):
    format: Literal["float", "smv", "hdf5"] = "float"
    frames_per_file: int = Field(100, ge=1, description="frames per HDF5 shard")


class DatasetSpec(_Strict):
    """What ``nanobrag dataset SPEC.yaml`` makes; exactly one of rotation, stills and sweep."""

    flags: str | list[str] = Field(description="nanoBragg flags of the base simulation")
    rotation: RotationSpec | None = None
    stills: StillsSpec | None = None
    sweep: dict[str, list[float] | GridSpec] | None = Field(
        None, description="parameter -> list of values or {start, stop, count}; several parameters: their product"
    )
    noise: NoiseSpec = NoiseSpec()
    output: OutputSpec = OutputSpec()
    batch: int | None = Field(None, ge=1, description="frames per render call (default: 1 on CPU, 8 on a GPU)")

    @field_validator("sweep")
    @classmethod
    def _known_parameters(cls, sweep):
        if sweep is None:
            return sweep
        if not sweep:
            raise ValueError("name at least one parameter to sweep")
        for name, values in sweep.items():
            if name not in PARAMETERS:
                raise ValueError(f"unknown parameter {name!r}; known: {', '.join(PARAMETERS)}")
            if isinstance(values, list) and not values:
                raise ValueError(f"{name}: give at least one value")
        return sweep

    @model_validator(mode="after")
    def _one_variation(self):
        given = [name for name in ("rotation", "stills", "sweep") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of rotation, stills or sweep (got {', '.join(given) or 'none'})")
        return self

    def flag_list(self) -> list[str]:
        return shlex.split(self.flags) if isinstance(self.flags, str) else list(self.flags)


def load_spec(path: str | os.PathLike[str]) -> DatasetSpec:
    """Read and validate a spec file; every problem is an InputError naming the file (and line)."""
    try:
        text = read_input_bytes(path, "dataset spec").decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise InputError(f"{where}: {err.problem}") from None
    except YAMLError as err:
        raise InputError(f"{path}: {err}") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: expected a mapping with flags and one of rotation, stills or sweep")
    try:
        return DatasetSpec.model_validate(document)
    except ValidationError as err:
        # The deepest problem is the most specific (for a union, the member the input resembles).
        problem = max(err.errors(), key=lambda e: len(e["loc"]))
        loc = tuple(problem["loc"])
        line = _line_of(document, loc)
        where = ".".join(str(part) for part in loc if not _is_union_tag(part)) or "spec"
        message = problem["msg"].removeprefix("Value error, ")
        raise InputError(f"{path}:{line}: {where}: {message}") from None


def _is_union_tag(part: Any) -> bool:
    # pydantic names the union member it tried ("list[float]", "GridSpec") inside error locations.
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _line_of(document: Any, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest node on ``loc`` that the YAML document has."""
    node, line = document, (document.lc.line + 1 if isinstance(document, CommentedMap) else 1)
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.value(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        elif not _is_union_tag(key):
            break
    return line


# ---------------------------------------------------------------------------------------------
# Frames


def uniform_rotation(seed: int, frame: int) -> np.ndarray:
    """A rotation matrix drawn uniformly over SO(3), the same for the same (seed, frame) everywhere.

    Three uniform numbers come from SHA-256 of the seed and frame index (no generator state, so any
    frame can be made alone), and become a unit quaternion by Shoemake's method.
    """
    digest = hashlib.sha256(f"nanobrag-stills:{seed}:{frame}".encode()).digest()
    u1, u2, u3 = (int.from_bytes(digest[8 * k : 8 * k + 8], "little") >> 11 for k in range(3))
    u1, u2, u3 = u1 / 2.0**53, u2 / 2.0**53, u3 / 2.0**53
    x = math.sqrt(1.0 - u1) * math.sin(2.0 * math.pi * u2)
    y = math.sqrt(1.0 - u1) * math.cos(2.0 * math.pi * u2)
    z = math.sqrt(u1) * math.sin(2.0 * math.pi * u3)
    w = math.sqrt(u1) * math.cos(2.0 * math.pi * u3)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def frame_model(config: SimulationConfig, values: dict[str, float]) -> tuple[SimulationConfig, dict[str, float]]:
    """The configuration and setup parameters of a frame: ``config`` with the frame's ``values`` applied.

    phi_deg, osc_deg and phisteps set the crystal's configuration; every other value is a parameter of
    :data:`nanobrag.setup.PARAMETERS` (misset angles, distance, wavelength, ...).
    """
    settings = {FRAME_SETTINGS[name]: value for name, value in values.items() if name in FRAME_SETTINGS}
    parameters = {name: value for name, value in values.items() if name not in FRAME_SETTINGS}
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise InputError(f"unknown per-frame value(s) {', '.join(unknown)}")
    if settings:
        config = config.model_copy(deep=True)
        for field, value in settings.items():
            setattr(config.crystal, field, value)
    return config, parameters


def parameter_tensors(parameters: dict[str, float]) -> dict[str, torch.Tensor]:
    """Setup parameters as float64 tensors: build_setup then rounds each once to the run's dtype, as it does
    for the same value given in the configuration."""
    return {name: torch.tensor(float(value), dtype=torch.float64) for name, value in parameters.items()}


class Dataset:
    """A validated spec with its base simulation resolved: frame values, work units, file names."""

    def __init__(self, spec: DatasetSpec, source: str = "spec") -> None:
        self.spec = spec
        try:
            config, outputs, options = parse_flags(spec.flag_list())
        except InputError as err:
            raise InputError(f"{source}: flags: {err}") from None
        xtal = config.crystal
        if xtal.misset_random and xtal.misset_seed is None and spec.stills is None:
            raise InputError(f"{source}: flags: -misset random needs -misset_seed in a dataset (frames must repeat)")
        if config.structure.hkl_path is not None:
            config.structure.dump_path = None  # every frame reads the table; none rewrites the Fdump.bin cache
        self.config: SimulationConfig = config
        self.outputs: OutputConfig = outputs
        self.options: RunOptions = options
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[options.dtype]
        self.frame_count = self._count()
        per_file = spec.output.frames_per_file if spec.output.format == "hdf5" else 1
        self.units = [list(range(k, min(k + per_file, self.frame_count))) for k in range(0, self.frame_count, per_file)]
        self._frame_digits = max(6, len(str(self.frame_count - 1)))
        self._unit_digits = max(5, len(str(len(self.units) - 1)))

    def _count(self) -> int:
        spec = self.spec
        if spec.rotation is not None:
            return spec.rotation.frames
        if spec.stills is not None:
            return spec.stills.frames
        return math.prod(len(self._sweep_values(name)) for name in spec.sweep)

    def _sweep_values(self, name: str) -> list[float]:
        values = self.spec.sweep[name]
        return values.values() if isinstance(values, GridSpec) else [float(v) for v in values]

    def values(self, frame: int) -> dict[str, float]:
        """The per-frame values of ``frame`` (0-based), in the units of nanoBragg's flags."""
        spec = self.spec
        if spec.rotation is not None:
            rotation = spec.rotation
            values: dict[str, Any] = {
                "phi_deg": rotation.start_deg + frame * rotation.osc_deg,
                "osc_deg": rotation.osc_deg,
            }
            if rotation.phisteps is not None:
                values["phisteps"] = rotation.phisteps
            return values
        if spec.stills is not None:
            angles = umat2misset(uniform_rotation(spec.stills.seed, frame))
            return dict(zip(("misset_x", "misset_y", "misset_z"), (math.degrees(a) for a in angles)))
        # The last parameter varies fastest.
        values, rest = {}, frame
        for name in reversed(list(spec.sweep)):
            choices = self._sweep_values(name)
            rest, position = divmod(rest, len(choices))
            values[name] = choices[position]
        return {name: values[name] for name in spec.sweep}

    def noise_seed(self, frame: int) -> int | None:
        return self.spec.noise.seed + frame if self.spec.noise.enabled else None

    def unit_of(self, frame: int) -> int:
        return frame // len(self.units[0])

    def file_name(self, unit: int) -> str:
        fmt = self.spec.output.format
        if fmt == "hdf5":
            return f"shard_{unit:0{self._unit_digits}d}.h5"
        return f"frame_{self.units[unit][0]:0{self._frame_digits}d}.{'bin' if fmt == 'float' else 'img'}"

    def setup(self, frame: int, device) -> Setup:
        config, parameters = frame_model(self.config, self.values(frame))
        return build_setup(config, params=parameter_tensors(parameters), dtype=self.dtype, device=device)

    def record(self) -> dict[str, Any]:
        """What dataset.json holds: the spec and the frame count."""
        return {"nanobrag": __version__, "frames": self.frame_count, "spec": self.spec.model_dump(mode="json")}

    def expected_entry(self, frame: int) -> dict[str, Any]:
        """The manifest fields of ``frame`` that follow from the spec alone."""
        unit = self.unit_of(frame)
        entry: dict[str, Any] = {"frame": frame, "file": self.file_name(unit)}
        if self.spec.output.format == "hdf5":
            entry["index"] = frame - self.units[unit][0]
        entry.update(self.values(frame))
        seed = self.noise_seed(frame)
        if seed is not None:
            entry["seed"] = seed
        return entry


# ---------------------------------------------------------------------------------------------
# Encoding a frame


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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# The manifest


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """The entries of a manifest file; a line that is not a complete JSON object with a frame is skipped
    (the last line of a killed run's part may be cut short)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("frame"), int):
            entries.append(entry)
    return entries


def _part_files(out: Path) -> list[Path]:
    return sorted(path for path in out.iterdir() if _PART.fullmatch(path.name))


def _manifest_text(entries: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(entry) + "\n" for entry in entries)


class _ManifestPart:
    """The lines one rank appends: each written whole with one O_APPEND write."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entries: Sequence[dict[str, Any]]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            os.write(fd, _manifest_text(entries).encode())
        finally:
            os.close(fd)


def _complete_entries(dataset: Dataset, out: Path, unit: int, candidates: list[dict[str, Any]]) -> list[dict] | None:
    """The verified manifest entries of every frame of ``unit``, or None when any frame is not proven complete."""
    frames = dataset.units[unit]
    path = out / dataset.file_name(unit)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if dataset.spec.output.format == "hdf5":
        from .io.hdf5 import read_shard

        try:
            stored, images = read_shard(path)
        except InputError:
            return None
        if [int(f) for f in stored] != frames:
            return None
        digests = {frame: _sha256(np.ascontiguousarray(images[k]).tobytes()) for k, frame in enumerate(frames)}
    else:
        digests = {frames[0]: _sha256(data)}
    complete = []
    for frame in frames:
        expected = dataset.expected_entry(frame)
        found = [
            entry
            for entry in candidates
            if entry.get("frame") == frame
            and entry.get("sha256") == digests[frame]
            and all(entry.get(key) == value for key, value in expected.items())
        ]
        if not found:
            return None
        complete.append(found[-1])
    return complete


# ---------------------------------------------------------------------------------------------
# Progress


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
        for path in _part_files(self.out):
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


# ---------------------------------------------------------------------------------------------
# Running


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
                _write_manifest(out, [entry for unit in sorted(complete) for entry in complete[unit]], parts=True)
            world.barrier()  # parts are cleared before any rank appends to its own
            todo = [unit for unit in range(len(dataset.units)) if unit not in complete]
            already = dataset.frame_count - sum(len(dataset.units[unit]) for unit in todo)
            part = _ManifestPart(out / f"manifest.part-{world.rank}.jsonl")
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
    for path in [out / MANIFEST, *_part_files(out)]:
        for entry in read_manifest(path):
            if 0 <= entry["frame"] < dataset.frame_count:
                by_unit.setdefault(dataset.unit_of(entry["frame"]), []).append(entry)
    mine = {}
    for unit in world.shard(sorted(by_unit)):
        entries = _complete_entries(dataset, out, unit, by_unit[unit])
        if entries is not None:
            mine[unit] = entries
    complete: dict[int, list[dict[str, Any]]] = {}
    for share in world.all_gather(mine):
        complete.update(share)
    return complete


def _write_manifest(out: Path, entries: list[dict[str, Any]], parts: bool) -> None:
    """Replace manifest.jsonl by ``entries`` (frame order), then remove the parts it absorbed."""
    absorbed = _part_files(out) if parts else []
    write_bytes_atomic(out / MANIFEST, _manifest_text(sorted(entries, key=lambda e: e["frame"])).encode())
    for path in absorbed:
        path.unlink(missing_ok=True)


def _merge(dataset: Dataset, out: Path) -> None:
    """Rank 0 at the end: the manifest plus every part, one entry per frame (the latest); all frames present."""
    latest: dict[int, dict[str, Any]] = {}
    for path in [out / MANIFEST, *_part_files(out)]:
        for entry in read_manifest(path):
            latest[entry["frame"]] = entry
    missing = [frame for frame in range(dataset.frame_count) if frame not in latest]
    if missing:
        raise InputError(f"{out}: frames {missing[:5]} missing after the run; run the command again to make them")
    _write_manifest(out, list(latest.values()), parts=True)


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
            from .io.hdf5 import write_shard

            stack = np.stack([pixels_by_frame[frame] for frame in unit_frames])
            values = [dataset.expected_entry(frame) for frame in unit_frames]
            parameters = {
                key: [entry[key] for entry in values] for key in values[0] if key not in ("frame", "file", "index")
            }
            attributes = {"nanobrag": __version__, "spec": json.dumps(dataset.record()["spec"])}
            write_shard(path, stack, unit_frames, parameters, attributes)
            digests = {frame: _sha256(pixels_by_frame[frame].tobytes()) for frame in unit_frames}
        else:
            frame = unit_frames[0]
            data = frame_file_bytes(fmt, pixels_by_frame[frame], setups_by_frame[frame], dataset.outputs)
            write_bytes_atomic(path, data)
            digests = {frame: _sha256(data)}
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
    return f"dataset: {summary.frames} frames in {out} ({made}){ranks}, {summary.seconds:.1f} s, {rate:.3g} frames/s"


@dataclass(frozen=True)
class TargetFrame:
    """One target image listed by a manifest, and the per-frame values it was taken with."""

    name: str  # the file, with the position in it for an HDF5 shard
    values: dict[str, Any]
    file: Path
    index: int | None = None

    def load(self, shape: tuple[int, int]) -> np.ndarray:
        """The image as float32 (slow, fast); it must have the detector's ``shape``."""
        if self.index is None:
            return read_float_image(self.file, shape)
        from .io.hdf5 import read_shard_frame

        image = read_shard_frame(self.file, self.index).astype(np.float32)
        if image.shape != tuple(shape):
            raise InputError(f"{self.name}: a {image.shape[0]}x{image.shape[1]} image, not {shape[0]}x{shape[1]}")
        return image


def read_targets(path: str | os.PathLike[str]) -> list[TargetFrame]:
    """The target images a manifest (or a dataset directory) lists, in its order.

    Used by multi-image refinement. A line needs ``file`` (relative to the manifest) and, for an HDF5
    shard, ``index``; its per-frame values are those of its keys that are :data:`FRAME_SETTINGS` or
    :data:`nanobrag.setup.PARAMETERS`. Float frames and HDF5 shards can be fitted; SMV frames
    (scaled, offset integers) cannot.
    """
    path = Path(path)
    manifest = path / MANIFEST if path.is_dir() else path
    if not manifest.is_file():
        raise InputError(f"--targets: {manifest}: no such manifest")
    targets = []
    for number, entry in enumerate(read_manifest(manifest), start=1):
        name = entry.get("file")
        if not isinstance(name, str):
            raise InputError(f"{manifest}:{number}: no file named")
        if name.endswith(".img"):
            raise InputError(f"{manifest}:{number}: {name}: SMV frames cannot be fitted; make the dataset as float")
        values = {key: value for key, value in entry.items() if key in FRAME_SETTINGS or key in PARAMETERS}
        index = entry.get("index") if name.endswith(".h5") else None
        if name.endswith(".h5") and not isinstance(index, int):
            raise InputError(f"{manifest}:{number}: {name}: an HDF5 frame needs its index")
        label = f"{name}[{index}]" if index is not None else name
        targets.append(TargetFrame(name=label, values=values, file=manifest.parent / name, index=index))
    if not targets:
        raise InputError(f"--targets: {manifest}: no frames listed")
    return targets
