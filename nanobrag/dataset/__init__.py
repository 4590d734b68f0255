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

from .manifest import MANIFEST, TargetFrame, read_manifest, read_targets
from .run import DatasetSummary, describe, run_dataset
from .spec import FRAME_SETTINGS, Dataset, DatasetSpec, frame_model, load_spec, uniform_rotation

__all__ = [
    "FRAME_SETTINGS",
    "MANIFEST",
    "Dataset",
    "DatasetSpec",
    "DatasetSummary",
    "TargetFrame",
    "describe",
    "frame_model",
    "load_spec",
    "read_manifest",
    "read_targets",
    "run_dataset",
    "uniform_rotation",
]
