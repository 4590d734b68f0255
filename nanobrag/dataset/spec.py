"""The dataset spec and its frames: what ``nanobrag dataset SPEC.yaml`` makes, frame by frame.

A spec holds the base simulation as nanoBragg flags and one way of varying it from frame to frame.
:class:`Dataset` resolves it: frame values (:meth:`Dataset.values`), work units and file names. A
frame's values, noise seed and so its bytes are a pure function of the spec and the frame index.
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .. import __version__
from ..config import OutputConfig, SimulationConfig
from ..errors import InputError
from ..flags import RunOptions, parse_flags
from ..frames import ImageSetups
from ..io.files import read_input_bytes
from ..refine import detector_shape
from ..setup import PARAMETERS, Device, Setup

# Per-frame values that set the crystal's configuration (nanoBragg's -phi, -osc, -phisteps); every
# other per-frame value is a parameter of nanobrag.setup.PARAMETERS.
FRAME_SETTINGS = {"phi_deg": "phi0_deg", "osc_deg": "osc_deg", "phisteps": "phisteps"}


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
    def _known_parameters(
        cls, sweep: dict[str, list[float] | GridSpec] | None
    ) -> dict[str, list[float] | GridSpec] | None:
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
    def _one_variation(self) -> DatasetSpec:
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
    u1, u2, u3 = ((int.from_bytes(digest[8 * k : 8 * k + 8], "little") >> 11) / 2.0**53 for k in range(3))
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
            config.structure.dump_path = None  # no frame rewrites the Fdump.bin cache
        self.config: SimulationConfig = config
        self._setups = ImageSetups()  # the structure-factor table read once, not once per frame
        self.outputs: OutputConfig = outputs
        self.options: RunOptions = options
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[options.dtype]
        self.image_shape = detector_shape(config)  # (slow, fast); no per-frame value changes it
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
        return math.prod(len(self._sweep_values(name)) for name in self._sweep)

    @property
    def _sweep(self) -> dict[str, list[float] | GridSpec]:
        """The sweep's parameters (the spec has a sweep when it has neither rotation nor stills)."""
        assert self.spec.sweep is not None
        return self.spec.sweep

    def _sweep_values(self, name: str) -> list[float]:
        values = self._sweep[name]
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
            from ..rng import umat2misset  # rng loads numba: only stills (and noise) need it

            angles = umat2misset(uniform_rotation(spec.stills.seed, frame))
            return dict(zip(("misset_x", "misset_y", "misset_z"), (math.degrees(a) for a in angles)))
        # The last parameter varies fastest.
        swept, rest = {}, frame
        for name in reversed(list(self._sweep)):
            choices = self._sweep_values(name)
            rest, position = divmod(rest, len(choices))
            swept[name] = choices[position]
        return {name: swept[name] for name in self._sweep}

    def noise_seed(self, frame: int) -> int | None:
        return self.spec.noise.seed + frame if self.spec.noise.enabled else None

    def unit_of(self, frame: int) -> int:
        return frame // len(self.units[0])

    def file_name(self, unit: int) -> str:
        fmt = self.spec.output.format
        if fmt == "hdf5":
            return f"shard_{unit:0{self._unit_digits}d}.h5"
        return f"frame_{self.units[unit][0]:0{self._frame_digits}d}.{'bin' if fmt == 'float' else 'img'}"

    def setup(self, frame: int, device: Device) -> Setup:
        config, parameters = frame_model(self.config, self.values(frame))
        return self._setups.build(config, params=parameter_tensors(parameters), dtype=self.dtype, device=device)

    def record(self) -> dict[str, Any]:
        """What dataset.json holds: the frame count and the spec, less ``batch`` (which changes no frame)."""
        spec = self.spec.model_dump(mode="json", exclude={"batch"})
        return {"nanobrag": __version__, "frames": self.frame_count, "spec": spec}

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
