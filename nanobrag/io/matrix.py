"""MOSFLM orientation matrices."""

from __future__ import annotations

import math
import os

from ..errors import InputError
from .files import read_input_text

# A MOSFLM matrix file is a few lines; anything far larger is the wrong file (or /dev/zero).
MATRIX_FILE_LIMIT = 2**20

Matrix3 = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]


def read_mosflm_matrix(path: str | os.PathLike[str]) -> Matrix3:
    """The first nine numbers of a MOSFLM A-matrix file, as three rows.

    nanoBragg reads them with ``fscanf("%lg")``: whitespace-separated numbers, line breaks ignored,
    anything after the ninth number (MOSFLM's U matrix, cell, ...) unused; NaN and infinity are
    refused. The rows are (a*x b*x c*x), (a*y b*y c*y), (a*z b*z c*z), still scaled by the
    wavelength. Whether they describe a cell is judged by :class:`nanobrag.config.CrystalConfig`.

    Args:
        path: the -mat file.

    Returns:
        Three rows of three numbers, as in the file (column j is the j-th reciprocal vector times the
        wavelength).

    Raises:
        InputError: fewer than nine numbers, or a value that is not finite.
    """
    tokens = read_input_text(path, "matrix file", MATRIX_FILE_LIMIT).split()
    numbers: list[float] = []
    for token in tokens[:9]:
        try:
            number = float(token)
        except ValueError:
            raise InputError(f"{path}: expected nine numbers, found {token!r} after {len(numbers)}") from None
        if not math.isfinite(number):
            raise InputError(f"{path}: expected nine finite numbers, found {token!r} after {len(numbers)}")
        numbers.append(number)
    if len(numbers) < 9:
        raise InputError(f"{path}: expected nine numbers, found only {len(numbers)}")
    n = numbers
    return ((n[0], n[1], n[2]), (n[3], n[4], n[5]), (n[6], n[7], n[8]))
