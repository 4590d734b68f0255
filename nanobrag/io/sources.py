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


def read_sourcefile(path: str | os.PathLike[str]) -> np.ndarray:
    """Sources as an (n, 5) float64 array of columns X Y Z I lambda, as read_text_file reads them.

    One source per line; values separated by spaces, tabs or any of ``,;:!``; blank lines skipped;
    missing trailing columns are NaN (nanoBragg later fills them with its defaults); columns past
    the fifth are ignored. Unlike nanoBragg, which reads a non-number as 0, a field that is not a
    number is an error naming the file and line, and so is a file without any source.
    """
    text = read_input_text(path, "source file")
    rows: list[list[float]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [field for field in _DELIMITERS.split(line.strip(" \t,;:!\r")) if field]
        if not fields:
            continue
        row = [float("nan")] * len(SOURCE_COLUMNS)
        for column, field in enumerate(fields[: len(SOURCE_COLUMNS)]):
            try:
                row[column] = float(field)
            except ValueError:
                raise InputError(
                    f"{path}, line {number}: {SOURCE_COLUMNS[column]} is not a number: {field!r}"
                ) from None
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no sources in source file")
    return np.array(rows, dtype=np.float64)
