"""MOSFLM orientation matrices."""

from __future__ import annotations

import os

from ..errors import InputError
from .files import read_input_text

Matrix3 = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]


def read_mosflm_matrix(path: str | os.PathLike[str]) -> Matrix3:
    """The first nine numbers of a MOSFLM A-matrix file, as three rows.

    nanoBragg reads them with ``fscanf("%lg")``: whitespace-separated numbers, line breaks ignored,
    anything after the ninth number (MOSFLM's U matrix, cell, ...) unused. The rows are
    (a*x b*x c*x), (a*y b*y c*y), (a*z b*z c*z), still scaled by the wavelength.
    """
    tokens = read_input_text(path, "matrix file").split()
    numbers: list[float] = []
    for token in tokens[:9]:
        try:
            numbers.append(float(token))
        except ValueError:
            raise InputError(f"{path}: expected nine numbers, found {token!r} after {len(numbers)}") from None
    if len(numbers) < 9:
        raise InputError(f"{path}: expected nine numbers, found only {len(numbers)}")
    n = numbers
    return ((n[0], n[1], n[2]), (n[3], n[4], n[5]), (n[6], n[7], n[8]))
