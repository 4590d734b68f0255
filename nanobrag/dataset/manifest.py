"""The manifest of a dataset: one JSON line per complete frame, its parts, and the proof that a frame is complete.

Also the reader of manifests as lists of target images (:func:`read_targets`), for refinement.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.files import Data, write_bytes_atomic
from ..io.hdf5 import iter_shard, read_shard_frame
from ..io.images import read_float_image
from ..setup import PARAMETERS
from .spec import FRAME_SETTINGS, Dataset

MANIFEST = "manifest.jsonl"
_READ_BLOCK = 1 << 20  # bytes read at a time when a frame file is checked
_PART = re.compile(r"manifest\.part-(\d+)\.jsonl")


def sha256(data: Data) -> str:
    """The hex SHA-256 of a file's content: bytes-like, or parts in order (see nanobrag.io.files.Data)."""
    digest = hashlib.sha256()
    for part in (data,) if isinstance(data, bytes | bytearray | memoryview) else data:
        digest.update(part)
    return digest.hexdigest()


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


def part_files(out: Path) -> list[Path]:
    return sorted(path for path in out.iterdir() if _PART.fullmatch(path.name))


def _manifest_text(entries: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(entry) + "\n" for entry in entries)


class ManifestPart:
    """The lines one rank appends: each written whole with one O_APPEND write."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entries: Sequence[dict[str, Any]]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            os.write(fd, _manifest_text(entries).encode())
        finally:
            os.close(fd)


def write_manifest(out: Path, entries: list[dict[str, Any]]) -> None:
    """Replace manifest.jsonl by ``entries`` (frame order), then remove the parts it absorbed."""
    absorbed = part_files(out)
    write_bytes_atomic(out / MANIFEST, _manifest_text(sorted(entries, key=lambda e: e["frame"])).encode())
    for path in absorbed:
        path.unlink(missing_ok=True)


def complete_entries(
    dataset: Dataset, out: Path, unit: int, candidates: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """The verified manifest entries of every frame of ``unit``, or None when any frame is not proven complete."""
    frames = dataset.units[unit]
    digests = _frame_digests(dataset, out, unit)
    if digests is None or list(digests) != frames:
        return None
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


def _frame_digests(dataset: Dataset, out: Path, unit: int) -> dict[int, str] | None:
    """The sha256 of each frame that the unit's file holds, in the file's order (an HDF5 shard: of each
    image's pixel bytes; a frame file: of the file); None when the file is missing or unreadable.
    Memory holds one frame at a time."""
    path = out / dataset.file_name(unit)
    try:
        if dataset.spec.output.format == "hdf5":
            return {frame: sha256(np.ascontiguousarray(image).tobytes()) for frame, image in iter_shard(path)}
        with path.open("rb") as handle:
            return {dataset.units[unit][0]: sha256(iter(lambda: handle.read(_READ_BLOCK), b""))}
    except (OSError, InputError):
        return None


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
