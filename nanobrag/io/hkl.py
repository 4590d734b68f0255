"""Structure-factor tables: nanoBragg's P1 ``h k l F`` text files and its binary ``Fdump.bin`` cache.

The cache layout is nanoBragg's: a text line ``h_min h_max k_min k_max l_min l_max``, a newline and a
form feed, then native (little-endian) doubles for a grid one larger than the index ranges along
every axis, walked h-major then k then l. The extra plane on each axis is zero padding nanoBragg
allocates and writes; it is dropped on reading.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..config import StructureConfig
from ..errors import InputError
from .files import read_input_bytes, read_input_text, write_bytes_atomic


@dataclass(frozen=True, eq=False)  # eq=False: an array field has no single truth value
class HKLTable:
    """A dense F grid over h_min..h_max, k_min..k_max, l_min..l_max (inclusive).

    ``F[h - h_min, k - k_min, l - l_min]``; reflections absent from the file hold ``default_F``,
    which is also the value for indices outside the grid. ``count`` is nanoBragg's ``hkls``: the
    number of reflections read from a text file, or the grid size for a cache.
    """

    h_min: int
    h_max: int
    k_min: int
    k_max: int
    l_min: int
    l_max: int
    F: np.ndarray
    default_F: float
    count: int

    @property
    def lower(self) -> tuple[int, int, int]:
        return (self.h_min, self.k_min, self.l_min)

    @property
    def upper(self) -> tuple[int, int, int]:
        return (self.h_max, self.k_max, self.l_max)


def read_hkl(path: str | os.PathLike[str], default_F: float = 0.0) -> HKLTable:
    """Read a P1 reflection list: one ``h k l F`` per line, whitespace separated.

    Blank lines are skipped; a later line for the same reflection replaces an earlier one, as in
    nanoBragg. Anything else (wrong number of fields, non-integer index, non-numeric F) is an error
    naming the file and line.
    """
    indices: list[tuple[int, int, int]] = []
    values: list[float] = []
    for number, line in enumerate(read_input_text(path, "HKL file").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4:
            raise InputError(f"{path}, line {number}: expected 'h k l F', got {line.strip()!r}")
        try:
            h, k, l = (int(field) for field in fields[:3])
        except ValueError:
            raise InputError(f"{path}, line {number}: Miller indices must be integers, got {line.strip()!r}") from None
        try:
            F = float(fields[3])
        except ValueError:
            raise InputError(f"{path}, line {number}: structure factor is not a number: {fields[3]!r}") from None
        indices.append((h, k, l))
        values.append(F)
    if not indices:
        raise InputError(f"{path}: no reflections in HKL file")
    hkl = np.array(indices, dtype=np.int64)
    lower, upper = hkl.min(axis=0), hkl.max(axis=0)
    grid = np.full(tuple(upper - lower + 1), float(default_F), dtype=np.float64)
    offsets = hkl - lower
    # Fancy assignment keeps the last value written for a repeated reflection, like nanoBragg's loop.
    grid[offsets[:, 0], offsets[:, 1], offsets[:, 2]] = values
    return HKLTable(
        h_min=int(lower[0]), h_max=int(upper[0]),
        k_min=int(lower[1]), k_max=int(upper[1]),
        l_min=int(lower[2]), l_max=int(upper[2]),
        F=grid, default_F=float(default_F), count=len(indices),
    )  # fmt: skip


def dump_bytes(table: HKLTable) -> bytes:
    """The Fdump.bin content nanoBragg writes for ``table``."""
    header = f"{table.h_min} {table.h_max} {table.k_min} {table.k_max} {table.l_min} {table.l_max}\n\f"
    padded = np.zeros(tuple(n + 1 for n in table.F.shape), dtype="<f8")
    padded[:-1, :-1, :-1] = table.F
    return header.encode("ascii") + padded.tobytes()


def write_dump(path: str | os.PathLike[str], table: HKLTable) -> None:
    write_bytes_atomic(path, dump_bytes(table))


def read_dump(path: str | os.PathLike[str], default_F: float = 0.0) -> HKLTable:
    """Read an Fdump.bin cache; ``default_F`` applies to indices outside its grid, as in nanoBragg."""
    data = read_input_bytes(path, "HKL cache")
    end = data.find(b"\n\f")
    try:
        bounds = [int(field) for field in data[:end].split()] if end >= 0 else []
    except ValueError:
        bounds = []
    if len(bounds) != 6:
        raise InputError(f"{path}: not an HKL cache (expected a line of six index bounds)")
    h_min, h_max, k_min, k_max, l_min, l_max = bounds
    shape = (h_max - h_min + 1, k_max - k_min + 1, l_max - l_min + 1)
    if min(shape) < 1:
        raise InputError(f"{path}: HKL cache has empty index ranges {bounds}")
    padded_shape = tuple(n + 1 for n in shape)
    expected = 8 * int(np.prod(padded_shape))
    payload = data[end + 2 :]
    if len(payload) != expected:
        raise InputError(f"{path}: HKL cache holds {len(payload)} bytes of data, expected {expected}")
    padded = np.frombuffer(payload, dtype="<f8").reshape(padded_shape)
    return HKLTable(
        h_min=h_min, h_max=h_max, k_min=k_min, k_max=k_max, l_min=l_min, l_max=l_max,
        F=padded[:-1, :-1, :-1].astype(np.float64), default_F=float(default_F), count=int(np.prod(shape)),
    )  # fmt: skip


def load_structure_factors(structure: StructureConfig) -> HKLTable | None:
    """nanoBragg's choice of structure factors.

    With an HKL file: read it and, when ``dump_path`` is set, refresh that cache (a cache that cannot
    be written is only a warning, as in nanoBragg). Without one: read the cache if ``dump_path``
    names an existing file. Otherwise None: every F is ``default_F``.
    """
    if structure.hkl_path is not None:
        table = read_hkl(structure.hkl_path, structure.default_F)
        if structure.dump_path is not None:
            try:
                write_dump(structure.dump_path, table)
            except InputError as err:
                warnings.warn(f"HKL cache not written: {err}", stacklevel=2)
        return table
    if structure.dump_path is not None and structure.dump_path.exists():
        return read_dump(structure.dump_path, structure.default_F)
    return None
