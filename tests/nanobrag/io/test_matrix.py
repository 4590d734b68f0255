"""nanobrag.io.matrix: MOSFLM A-matrix files, read as nanoBragg reads them."""

from __future__ import annotations

import pytest

from nanobrag.errors import InputError
from nanobrag.io.matrix import read_mosflm_matrix


@pytest.mark.golden
def test_golden_matrix_takes_first_nine_numbers(shared_dir):
    rows = read_mosflm_matrix(shared_dir / "golden" / "A.mat")
    first_lines = (shared_dir / "golden" / "A.mat").read_text().split()[:9]
    assert [v for row in rows for v in row] == [float(v) for v in first_lines]


def test_matrix_ignores_line_breaks(tmp_path):
    (tmp_path / "a.mat").write_text("1 2\n3 4 5 6\n7\n8 9 10 extra\n")
    assert read_mosflm_matrix(tmp_path / "a.mat") == ((1, 2, 3), (4, 5, 6), (7, 8, 9))


@pytest.mark.parametrize(
    "text, message", [("1 2 3\n4 5 6\n", "found only 6"), ("1 2 x 4 5 6 7 8 9", "found 'x' after 2")]
)
def test_bad_matrix_files(tmp_path, text, message):
    (tmp_path / "a.mat").write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_mosflm_matrix(tmp_path / "a.mat")
    assert "a.mat" in str(err.value)
    with pytest.raises(InputError, match="cannot read matrix file"):
        read_mosflm_matrix(tmp_path / "missing.mat")
