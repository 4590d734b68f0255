"""HDF5 shards: several frames in one file along a leading frame axis (h5py).

Layout of a shard:

- ``/images``: (frames, slow, fast) -- float32 photons per pixel, or uint16 counts for noise images;
- ``/frame``: (frames,) int64 -- each image's frame index in its dataset;
- ``/parameters/<name>``: (frames,) float64 -- the per-frame values (phi_deg, misset_x, distance, ...);
- root attributes: text metadata given by the writer (the dataset spec as JSON).

A shard is written frame by frame into a temporary file beside its target and moved into place
when every frame is in (:func:`shard_writer`), so memory holds one frame, not the shard, and a
killed writer leaves no shard behind. Object timestamps are off, so the same frames always give
the same bytes. Readers take one frame at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import h5py
import numpy as np

from ..errors import InputError
from .files import StagedOutputs


@contextmanager
def shard_writer(
    path: str | os.PathLike[str],
    frames: Sequence[int],
    image_shape: tuple[int, int],
    dtype: np.dtype | str,
    parameters: Mapping[str, Sequence[float]],
    attributes: Mapping[str, str],
) -> Iterator[h5py.Dataset]:
    """A shard of ``frames`` at ``path``: the block gets the ``/images`` dataset to fill (``images[k] = image``).

    The shard appears at ``path`` only when the block ends normally; an exception removes it.
    """
    with StagedOutputs() as staged:
        temporary = staged.temporary(path)
        try:
            with h5py.File(temporary, "w") as shard:
                shard.create_dataset("frame", data=np.asarray(frames, dtype=np.int64), track_times=False)
                group = shard.create_group("parameters")
                for name, values in parameters.items():
                    group.create_dataset(name, data=np.asarray(values, dtype=np.float64), track_times=False)
                for key, value in attributes.items():
                    shard.attrs[key] = value
                yield shard.create_dataset(
                    "images", shape=(len(frames), *image_shape), dtype=np.dtype(dtype), track_times=False
                )
        except OSError as err:
            raise InputError(f"cannot write {path}: {err}") from None


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


def iter_shard(path: str | os.PathLike[str]) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, image) of every image of a shard, one image in memory at a time."""
    try:
        with h5py.File(path, "r") as shard:
            frames, images = np.asarray(shard["frame"][()]), shard["images"]
            if images.shape[0] != frames.shape[0]:
                raise InputError(f"{path}: {images.shape[0]} images for {frames.shape[0]} frame indices")
            for position, frame in enumerate(frames):
                yield int(frame), np.asarray(images[position])
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{path}: not a readable nanobrag HDF5 shard ({err})") from None
