"""nanoBragg's source files (``-sourcefile``)."""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import InputError
from .files import read_input_text

SOURCE_COLUMNS = ("X", "Y", "Z", "I", "lambda")
# nanoBragg's read_text_file separates values by any run of these characters.
_DELIMITERS = re.compile(r"[ \t,;:!]+")


def read_text_columns(path: str | os.PathLike[str], columns: tuple[str, ...], what: str) -> np.ndarray:
    """A table of numbers as nanoBragg's read_text_file reads it: an (n, len(columns)) float64 array.

    One row per line; values separated by spaces, tabs or any of ``,;:!``; blank lines skipped;
    missing trailing columns are NaN (nanoBragg fills them with its defaults); extra columns are
    ignored. Unlike nanoBragg, which reads a non-number as 0, a field that is not a number is an
    error naming the file and line, and so is a file without any row.
    """
    text = read_input_text(path, what)
    rows: list[list[float]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [field for field in _DELIMITERS.split(line.strip(" \t,;:!\r")) if field]
        if not fields:
            continue
        row = [float("nan")] * len(columns)
        for column, field in enumerate(fields[: len(columns)]):
            try:
                row[column] = float(field)
            except ValueError:
                raise InputError(f"{path}, line {number}: {columns[column]} is not a number: {field!r}") from None
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no data in {what}")
    return np.array(rows, dtype=np.float64)


def read_sourcefile(path: str | os.PathLike[str]) -> np.ndarray:
    """Sources as an (n, 5) float64 array of columns X Y Z I lambda (see :func:`read_text_columns`)."""
    return read_text_columns(path, SOURCE_COLUMNS, "source file")
