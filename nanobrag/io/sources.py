"""nanoBragg's source files (``-sourcefile``)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable

import numpy as np

from ..errors import InputError
from .files import read_input_text

SOURCE_COLUMNS = ("X", "Y", "Z", "I", "lambda")
# nanoBragg's read_text_file separates values by any run of these characters.
_DELIMITERS = re.compile(r"[ \t,;:!]+")

# A rule for one row (its numbers, and the fields as typed): an error message, or None if it is fine.
RowCheck = Callable[[list[float], list[str]], str | None]


def read_text_columns(
    path: str | os.PathLike[str], columns: tuple[str, ...], what: str, check_row: RowCheck | None = None
) -> np.ndarray:
    """A table of numbers as nanoBragg's read_text_file reads it: an (n, len(columns)) float64 array.

    One row per line; values separated by spaces, tabs or any of ``,;:!``; blank lines skipped;
    missing trailing columns are NaN (nanoBragg fills them with its defaults); extra columns are
    ignored. Unlike nanoBragg, which reads a non-number as 0, a field that is not a finite number is
    an error naming the file and line, and so is a file without any row, or a row that ``check_row``
    refuses.
    """
    text = read_input_text(path, what)
    rows: list[list[float]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [field for field in _DELIMITERS.split(line.strip(" \t,;:!\r")) if field]
        if not fields:
            continue
        row = [math.nan] * len(columns)
        for column, field in enumerate(fields[: len(columns)]):
            try:
                row[column] = float(field)
            except ValueError:
                row[column] = math.nan
            if not math.isfinite(row[column]):
                raise InputError(f"{path}, line {number}: {columns[column]} is not a finite number: {field!r}")
        problem = check_row(row, fields) if check_row is not None else None
        if problem is not None:
            raise InputError(f"{path}, line {number}: {problem}")
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no data in {what}")
    return np.array(rows, dtype=np.float64)


def read_sourcefile(path: str | os.PathLike[str]) -> np.ndarray:
    """Sources as an (n, 5) float64 array of columns X Y Z I lambda (see :func:`read_text_columns`).

    Unlike nanoBragg, which takes any wavelength, a wavelength that is not positive is an error.

    Args:
        path: the -sourcefile text file.

    Returns:
        The (n, 5) array; missing values are NaN (filled by :func:`nanobrag.beam.file_sources`).

    Raises:
        InputError: a malformed or non-finite value, or a wavelength that is not positive, with file and line.
    """
    return read_text_columns(path, SOURCE_COLUMNS, "source file", _positive_wavelength)


def _positive_wavelength(row: list[float], fields: list[str]) -> str | None:
    if math.isnan(row[4]) or row[4] > 0:  # missing: nanoBragg's default wavelength
        return None
    return f"the wavelength must be positive, got {fields[4]!r}"
