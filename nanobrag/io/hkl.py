"""Structure-factor tables: nanoBragg's P1 ``h k l F`` text files and its binary ``Fdump.bin`` cache.

The cache layout is nanoBragg's: a text line ``h_min h_max k_min k_max l_min l_max``, a newline and a
form feed, then native (little-endian) doubles for a grid one larger than the index ranges along
every axis, walked h-major then k then l. The extra plane on each axis is zero padding nanoBragg
allocates and writes; it is dropped on reading.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import StructureConfig
from ..errors import InputError
from ..machine import available_memory
from .files import read_input_bytes, read_input_text, size_text, write_bytes_atomic


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


# nanoBragg reads Miller indices into C ints.
_INDEX_LIMIT = 2**31 - 1
# The dense table may take at most this share of the memory available: the simulation needs the rest.
TABLE_MEMORY_SHARE = 0.5


def read_hkl(path: str | os.PathLike[str], default_F: float = 0.0) -> HKLTable:
    """Read a P1 reflection list: one ``h k l F`` per line, whitespace separated.

    Blank lines are skipped; a later line for the same reflection replaces an earlier one, as in
    nanoBragg. Anything else (wrong number of fields, non-integer or out-of-range index, a structure
    factor that is not a finite number) is an error naming the file and line, and so is a list whose
    index ranges make a dense table larger than the memory can hold (see :func:`check_table_size`).

    Args:
        path: the HKL text file.
        default_F: F of the reflections the file does not list.

    Returns:
        The dense :class:`HKLTable`.

    Raises:
        InputError: a malformed or non-finite line (named by file and line), indices beyond C's int,
            or an index range whose table would not fit in memory.
    """
    text = read_input_text(path, "HKL file")
    parsed = _parse_well_formed(text)
    if parsed is None:  # something to report: the line-by-line reader names the line
        hkl, values, lines = _parse_by_line(path, text)
    else:
        hkl, values, lines = parsed
    lower, upper = hkl.min(axis=0), hkl.max(axis=0)
    check_table_size(
        path, lower, upper, [(lines(int(hkl[:, a].argmin())), lines(int(hkl[:, a].argmax()))) for a in range(3)]
    )
    grid = np.full(tuple(upper - lower + 1), float(default_F), dtype=np.float64)
    offsets = hkl - lower
    # Fancy assignment keeps the last value written for a repeated reflection, like nanoBragg's loop.
    grid[offsets[:, 0], offsets[:, 1], offsets[:, 2]] = values
    return HKLTable(
        h_min=int(lower[0]), h_max=int(upper[0]),
        k_min=int(lower[1]), k_max=int(upper[1]),
        l_min=int(lower[2]), l_max=int(upper[2]),
        F=grid, default_F=float(default_F), count=len(hkl),
    )  # fmt: skip


_ROW = np.dtype([("h", np.int64), ("k", np.int64), ("l", np.int64), ("F", np.float64)])


def _parse_well_formed(text: str) -> tuple[np.ndarray, np.ndarray, Callable[[int], int]] | None:
    """(hkl (n, 3), F (n,), line of row) by numpy's C reader; None if any line needs a message.

    Seven times faster than the line loop for half a million reflections; anything unusual (a
    wrong field count, a non-integer index, a non-finite F, an index out of range) is left to
    :func:`_parse_by_line`, which says what and where.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns on empty input: leave it to the loop
            rows = np.loadtxt(io.StringIO(text), dtype=_ROW, comments=None, ndmin=1)
    except (ValueError, UserWarning):
        return None
    hkl = np.stack([rows["h"], rows["k"], rows["l"]], axis=1)
    values = rows["F"]
    if not len(rows) or not np.isfinite(values).all() or np.abs(hkl).max() > _INDEX_LIMIT:
        return None
    physical = text.splitlines()
    if len(physical) == len(rows):
        return hkl, values, lambda row: row + 1
    numbers = [number for number, line in enumerate(physical, start=1) if line.split()]
    return hkl, values, numbers.__getitem__


def _parse_by_line(path: str | os.PathLike[str], text: str) -> tuple[np.ndarray, np.ndarray, Callable[[int], int]]:
    """The reference reader, one line at a time: every malformed line is an error naming it."""
    indices: list[tuple[int, int, int]] = []
    values: list[float] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4:
            raise InputError(f"{path}, line {number}: expected 'h k l F', got {line.strip()!r}")
        try:
            h, k, l = (int(field) for field in fields[:3])
        except ValueError:
            raise InputError(f"{path}, line {number}: Miller indices must be integers, got {line.strip()!r}") from None
        if max(abs(h), abs(k), abs(l)) > _INDEX_LIMIT:
            raise InputError(
                f"{path}, line {number}: Miller index out of range (nanoBragg's limit is +-{_INDEX_LIMIT}),"
                f" got {line.strip()!r}"
            )
        try:
            F = float(fields[3])
        except ValueError:
            raise InputError(f"{path}, line {number}: structure factor is not a number: {fields[3]!r}") from None
        if not math.isfinite(F):
            raise InputError(f"{path}, line {number}: structure factor must be a finite number, got {fields[3]!r}")
        indices.append((h, k, l))
        values.append(F)
        lines.append(number)
    if not indices:
        raise InputError(f"{path}: no reflections in HKL file")
    return np.array(indices, dtype=np.int64), np.array(values, dtype=np.float64), lines.__getitem__


def check_table_size(
    path: str | os.PathLike[str],
    lower: Sequence[int] | np.ndarray,
    upper: Sequence[int] | np.ndarray,
    extreme_lines: list[tuple[int, int]] | None = None,
) -> None:
    """Refuse, with the figures, an index range whose dense table would not fit in memory.

    nanoBragg stores F on the dense grid spanned by the smallest and largest index on each axis, so
    a single stray reflection (say h = 2000 in a list that otherwise ends at 40) asks for a table of
    hundreds of GiB. A real P1 list fills about half of its box, so a table too large for memory is
    a file to fix, not one to store sparsely. ``extreme_lines`` (per axis: lines of the smallest and
    largest index) point at the reflections that set the widest range.
    """
    shape = [int(hi) - int(lo) + 1 for lo, hi in zip(lower, upper)]
    needed = 8 * math.prod(shape)
    available = available_memory()
    if available is None or needed <= TABLE_MEMORY_SHARE * available:
        return
    ranges = ", ".join(f"{axis} {int(lo)}..{int(hi)}" for axis, lo, hi in zip("hkl", lower, upper))
    where = ""
    if extreme_lines is not None:
        widest = max(range(3), key=lambda axis: shape[axis])
        where = (
            f" (the {'hkl'[widest]} range is set by lines {extreme_lines[widest][0]} and {extreme_lines[widest][1]})"
        )
    raise InputError(
        f"{path}: the reflections span {ranges}{where}: nanoBragg's dense table of"
        f" {' x '.join(map(str, shape))} structure factors needs {size_text(needed)}, more than"
        f" {TABLE_MEMORY_SHARE:.0%} of the {size_text(available)} of memory available"
    )


def dump_chunks(table: HKLTable) -> Iterator[bytes]:
    """The Fdump.bin content nanoBragg writes for ``table``, one h plane at a time (no second full copy)."""
    yield f"{table.h_min} {table.h_max} {table.k_min} {table.k_max} {table.l_min} {table.l_max}\n\f".encode("ascii")
    k_range, l_range = table.F.shape[1:]
    plane = np.zeros((k_range + 1, l_range + 1), dtype="<f8")
    for h_plane in table.F:
        plane[:-1, :-1] = h_plane
        yield plane.tobytes()
    yield bytes(8 * (k_range + 1) * (l_range + 1))  # nanoBragg's extra plane of zeros


def dump_bytes(table: HKLTable) -> bytes:
    """The Fdump.bin content nanoBragg writes for ``table``."""
    return b"".join(dump_chunks(table))


def write_dump(path: str | os.PathLike[str], table: HKLTable) -> None:
    """Write ``table`` as nanoBragg's Fdump.bin cache, atomically.

    Args:
        path: the cache file.
        table: the table to store.
    """
    write_bytes_atomic(path, dump_chunks(table))


def read_dump(path: str | os.PathLike[str], default_F: float = 0.0) -> HKLTable:
    """Read an Fdump.bin cache; ``default_F`` applies to indices outside its grid, as in nanoBragg.

    Args:
        path: the Fdump.bin file.
        default_F: F outside the cached grid.

    Returns:
        The :class:`HKLTable` (``count`` is the grid size, as nanoBragg reports it).

    Raises:
        InputError: a file that is not a complete cache, or holds non-finite values.
    """
    data = read_input_bytes(path, "HKL cache")
    end = data.find(b"\n\f")
    try:
        bounds = [int(field) for field in data[:end].split()] if end >= 0 else []
    except ValueError:
        bounds = []
    if len(bounds) != 6 or max(map(abs, bounds)) > _INDEX_LIMIT:
        raise InputError(f"{path}: not an HKL cache (expected a line of six index bounds)")
    h_min, h_max, k_min, k_max, l_min, l_max = bounds
    shape = (h_max - h_min + 1, k_max - k_min + 1, l_max - l_min + 1)
    if min(shape) < 1:
        raise InputError(f"{path}: HKL cache has empty index ranges {bounds}")
    padded_shape = tuple(n + 1 for n in shape)
    expected = 8 * math.prod(padded_shape)  # Python ints: absurd bounds cannot wrap around
    payload = data[end + 2 :]
    if len(payload) != expected:
        raise InputError(f"{path}: HKL cache holds {len(payload)} bytes of data, expected {expected}")
    F = np.frombuffer(payload, dtype="<f8").reshape(padded_shape)[:-1, :-1, :-1].astype(np.float64)
    bad = ~np.isfinite(F)
    if bad.any():
        h, k, l = (int(i) + lo for i, lo in zip(np.unravel_index(int(bad.argmax()), F.shape), (h_min, k_min, l_min)))
        raise InputError(
            f"{path}: HKL cache holds {int(bad.sum())} structure factors that are not finite numbers"
            f" (the first at h k l = {h} {k} {l}); delete it, or read the list again with -hkl"
        )
    return HKLTable(
        h_min=h_min, h_max=h_max, k_min=k_min, k_max=k_max, l_min=l_min, l_max=l_max,
        F=F, default_F=float(default_F), count=math.prod(shape),
    )  # fmt: skip


def load_structure_factors(structure: StructureConfig) -> HKLTable | None:
    """nanoBragg's choice of structure factors.

    With an HKL file: read it and, when ``dump_path`` is set, refresh that cache (a cache that cannot
    be written is only a warning, as in nanoBragg). Without one: read the cache if ``dump_path``
    names an existing regular file. Otherwise None: every F is ``default_F``.

    Args:
        structure: the structure settings (-hkl, -default_F, the cache path).

    Returns:
        The table, or None when neither an HKL file nor a readable cache is given (``default_F`` alone).

    Raises:
        InputError: from :func:`read_hkl` or :func:`read_dump`.
    """
    if structure.hkl_path is not None:
        table = read_hkl(structure.hkl_path, structure.default_F)
        if structure.dump_path is not None:
            try:
                write_dump(structure.dump_path, table)
            except InputError as err:
                warnings.warn(f"HKL cache not written: {err}", stacklevel=2)
        return table
    if structure.dump_path is not None and structure.dump_path.is_file():  # /dev/null holds no cache
        return read_dump(structure.dump_path, structure.default_F)
    return None
