"""HDF5 shards: several frames in one file along a leading frame axis (h5py).

Layout of a shard:

- ``/images``: (frames, slow, fast) -- float32 photons per pixel, or uint16 counts for noise images;
- ``/frame``: (frames,) int64 -- each image's frame index in its dataset;
- ``/parameters/<name>``: (frames,) float64 -- the per-frame values (phi_deg, misset_x, distance, ...);
- root attributes: text metadata given by the writer (the dataset spec as JSON).

A shard is built in memory and written all at once (temporary file, then rename); object timestamps are
off, so the same frames always give the same bytes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence

import h5py
import numpy as np

from ..errors import InputError
from .files import read_input_bytes, write_bytes_atomic


def shard_bytes(
    images: np.ndarray,
    frames: Sequence[int],
    parameters: Mapping[str, Sequence[float]],
    attributes: Mapping[str, str],
) -> bytes:
    """The content of a shard file holding ``images`` (frames, slow, fast)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as shard:
        shard.create_dataset("images", data=images, track_times=False)
        shard.create_dataset("frame", data=np.asarray(frames, dtype=np.int64), track_times=False)
        group = shard.create_group("parameters")
        for name, values in parameters.items():
            group.create_dataset(name, data=np.asarray(values, dtype=np.float64), track_times=False)
        for key, value in attributes.items():
            shard.attrs[key] = value
    return buffer.getvalue()


def write_shard(path: str | os.PathLike[str], images, frames, parameters, attributes) -> None:
    write_bytes_atomic(path, shard_bytes(np.asarray(images), frames, parameters, attributes))


def read_shard(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices, images) of a shard; an unreadable or malformed file is an InputError naming it."""
    data = read_input_bytes(path)
    try:
        with h5py.File(io.BytesIO(data), "r") as shard:
            return np.asarray(shard["frame"][()]), np.asarray(shard["images"][()])
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{path}: not a readable nanobrag HDF5 shard ({err})") from None


def read_shard_frame(path: str | os.PathLike[str], index: int) -> np.ndarray:
    """Image number ``index`` (0-based position in the file) of a shard; reads only that image from disk."""
    try:
        with h5py.File(path, "r") as shard:
            images = shard["images"]
            if not 0 <= index < images.shape[0]:
                raise InputError(f"{path}: no image at position {index} (the shard holds {images.shape[0]})")
            return np.asarray(images[index])
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{path}: not a readable nanobrag HDF5 shard ({err})") from None
