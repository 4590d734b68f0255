"""nanobrag.io.sources: -sourcefile and nanoBragg's other text tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nanobrag.errors import InputError
from nanobrag.io.sources import read_sourcefile, read_text_columns


def test_sourcefile_columns_delimiters_and_blank_lines(tmp_path):
    (tmp_path / "s.txt").write_text("-10 0 0 1 1e-10\n\n  \t\n0,0.1;-10:0.5!\r\n1 2\n1 2 3 4 5 6 7\n")
    sources = read_sourcefile(tmp_path / "s.txt")
    assert sources.shape == (4, 5)
    np.testing.assert_array_equal(sources[0], [-10, 0, 0, 1, 1e-10])
    np.testing.assert_array_equal(sources[1, :4], [0, 0.1, -10, 0.5])
    assert math.isnan(sources[1, 4]) and np.isnan(sources[2, 2:]).all()
    np.testing.assert_array_equal(sources[3], [1, 2, 3, 4, 5])  # columns past the fifth are ignored


@pytest.mark.parametrize(
    "text, message", [("1 2 three\n", r"line 1: Z is not a finite number"), ("\n\n", "no data in source file")]
)
def test_bad_sourcefiles(tmp_path, text, message):
    (tmp_path / "s.txt").write_text(text)
    with pytest.raises(InputError, match=message):
        read_sourcefile(tmp_path / "s.txt")
    with pytest.raises(InputError, match="cannot read source file"):
        read_sourcefile(tmp_path / "none.txt")


def test_text_tables_refuse_numbers_that_are_not_finite(tmp_path):
    (tmp_path / "stol.txt").write_text("0.0 2.5\n\n0.1 inf\n")
    with pytest.raises(InputError, match=r"stol\.txt, line 3: F is not a finite number: 'inf'$"):
        read_text_columns(tmp_path / "stol.txt", ("stol", "F"), "S(Q) table")
