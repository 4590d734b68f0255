"""HKL text files, the Fdump.bin cache, and nanoBragg's choice between them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nanobrag.config import StructureConfig
from nanobrag.errors import InputError
from nanobrag.io import hkl as hkl_module
from nanobrag.io.hkl import dump_bytes, load_structure_factors, read_dump, read_hkl, write_dump

from ..golden_cases import log_values


@pytest.mark.golden
@pytest.mark.parametrize(
    "name, hkl, default_F", [("hkl_nearest", "dense.hkl", 0.0), ("hkl_sparse_default", "sparse.hkl", 20.0)]
)
def test_golden_hkl_files_read_like_nanobragg(shared_dir, name, hkl, default_F):
    table = read_hkl(shared_dir / "golden" / hkl, default_F)
    (count,) = log_values(shared_dir, name, r"(\d+) initialized hkls")
    assert table.count == int(count)
    lines = [line.split() for line in (shared_dir / "golden" / hkl).read_text().splitlines() if line.strip()]
    hkl_rows = np.array([[int(v) for v in fields[:3]] for fields in lines])
    assert table.lower == tuple(hkl_rows.min(axis=0)) and table.upper == tuple(hkl_rows.max(axis=0))
    assert table.F.shape == tuple(hkl_rows.max(axis=0) - hkl_rows.min(axis=0) + 1)
    h, k, l = hkl_rows[-1]
    assert table.F[h - table.h_min, k - table.k_min, l - table.l_min] == float(lines[-1][3])
    # Every grid point not in the file holds default_F.
    listed = np.zeros(table.F.shape, bool)
    listed[tuple((hkl_rows - hkl_rows.min(axis=0)).T)] = True
    assert (table.F[~listed] == default_F).all()


def _write(tmp_path, text, name="in.hkl"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_later_duplicate_wins_and_blank_lines_are_skipped(tmp_path):
    table = read_hkl(_write(tmp_path, "0 0 0 5\n\n  1 -1 2   7.5\n0 0 0 6\n"), default_F=3.0)
    assert (table.h_min, table.h_max, table.k_min, table.k_max, table.l_min, table.l_max) == (0, 1, -1, 0, 0, 2)
    assert table.F[0, 1, 0] == 6.0 and table.F[1, 0, 2] == 7.5 and table.F[0, 0, 0] == 3.0
    assert table.count == 3 and table.default_F == 3.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 2 3 4\n1 2 3\n", r"line 2: expected 'h k l F'"),
        ("1 2 3 4 5\n", r"line 1: expected 'h k l F'"),
        ("1 2.5 3 4\n", r"line 1: Miller indices must be integers"),
        ("1 2 3 four\n", r"line 1: structure factor is not a number"),
        ("\n  \n", r"no reflections"),
    ],
)
def test_bad_hkl_files_name_file_and_line(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=message) as err:
        read_hkl(path)
    assert str(path) in str(err.value)


def test_missing_hkl_file_is_named(tmp_path):
    with pytest.raises(InputError, match=r"cannot read HKL file .*nope\.hkl"):
        read_hkl(tmp_path / "nope.hkl")


def test_dump_layout_is_nanobraggs(tmp_path):
    table = read_hkl(_write(tmp_path, "-1 0 2 5\n1 1 3 6\n"), default_F=2.0)
    data = dump_bytes(table)
    header = b"-1 1 0 1 2 3\n\f"
    assert data.startswith(header)
    padded = np.frombuffer(data[len(header) :], dtype="<f8").reshape(4, 3, 3)  # ranges + 1 on each axis
    np.testing.assert_array_equal(padded[:-1, :-1, :-1], table.F)
    assert not padded[-1].any() and not padded[:, -1].any() and not padded[:, :, -1].any()


def test_dump_round_trip(tmp_path):
    table = read_hkl(_write(tmp_path, "-2 0 1 1.25\n3 -4 5 -2.5\n0 0 0 1e300\n"), default_F=9.0)
    write_dump(tmp_path / "Fdump.bin", table)
    back = read_dump(tmp_path / "Fdump.bin", default_F=4.0)
    assert (back.lower, back.upper) == (table.lower, table.upper)
    np.testing.assert_array_equal(back.F, table.F)
    assert back.default_F == 4.0 and back.count == table.F.size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Fdump.bin", "in.hkl"]  # no temporary left


@pytest.mark.parametrize(
    "content, message",
    [
        (b"garbage", "not an HKL cache"),
        (b"0 0 0 0 0\n\f", "not an HKL cache"),
        (b"0 1 0 0 0 0\n\f" + b"\0" * 8, "expected 96"),
        (b"1 0 0 0 0 0\n\f", "empty"),
    ],
)
def test_bad_dump_files(tmp_path, content, message):
    (tmp_path / "Fdump.bin").write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_dump(tmp_path / "Fdump.bin")


def test_load_structure_factors_follows_nanobraggs_order(tmp_path):
    hkl = _write(tmp_path, "0 0 0 5\n1 1 1 6\n")
    dump = tmp_path / "cache.bin"
    table = load_structure_factors(StructureConfig(hkl_path=hkl, dump_path=dump, default_F=1.0))
    assert table is not None and dump.exists()  # reading a text file refreshes the cache
    cached = load_structure_factors(StructureConfig(dump_path=dump, default_F=2.0))
    np.testing.assert_array_equal(cached.F, table.F)
    assert cached.default_F == 2.0
    dump.unlink()
    assert load_structure_factors(StructureConfig(dump_path=dump, default_F=2.0)) is None
    assert load_structure_factors(StructureConfig(hkl_path=hkl)).count == 2  # no cache named: none written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.hkl"]


def test_unwritable_cache_only_warns(tmp_path):
    hkl = _write(tmp_path, "0 0 0 5\n")
    with pytest.warns(UserWarning, match="HKL cache not written"):
        table = load_structure_factors(StructureConfig(hkl_path=hkl, dump_path=tmp_path / "no" / "Fdump.bin"))
    assert table.F[0, 0, 0] == 5.0


@pytest.mark.golden
def test_golden_hkl_copied_then_cached(shared_dir, tmp_path):
    hkl = tmp_path / "sparse.hkl"
    shutil.copy(shared_dir / "golden" / "sparse.hkl", hkl)
    first = load_structure_factors(StructureConfig(hkl_path=hkl, dump_path=tmp_path / "Fdump.bin", default_F=20.0))
    second = load_structure_factors(StructureConfig(dump_path=tmp_path / "Fdump.bin", default_F=20.0))
    np.testing.assert_array_equal(first.F, second.F)


def test_a_table_too_large_for_memory_is_refused_with_the_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(hkl_module, "available_memory", lambda: 2**20)  # 1 MiB: tables up to 512 KiB
    path = _write(tmp_path, "0 0 0 1\n1 1 1 2\n199 0 0 3\n\n0 0 -300 4\n")
    with pytest.raises(InputError) as err:
        read_hkl(path)
    assert str(err.value) == (
        f"{path}: the reflections span h 0..199, k 0..1, l -300..1 (the l range is set by lines 5 and 2):"
        " nanoBragg's dense table of 200 x 2 x 302 structure factors needs 944 KiB, more than 50% of the"
        " 1 MiB of memory available"
    )
    monkeypatch.setattr(hkl_module, "available_memory", lambda: 2**30)
    assert read_hkl(path).F.shape == (200, 2, 302)


def test_cache_with_absurd_bounds_is_not_a_cache(tmp_path):
    (tmp_path / "Fdump.bin").write_bytes(b"-9999999999 9999999999 0 0 0 0\n\f")
    with pytest.raises(InputError, match="not an HKL cache"):
        read_dump(tmp_path / "Fdump.bin")


def test_fast_reader_agrees_with_the_line_reader(tmp_path):
    """numpy's C reader takes well-formed files; the line loop is the reference it must match."""
    text = "\n  1 -2 +3  4.5\n0 0 0 1e2\n\n\t-1 2 3 7\n1 -2 3 0.25\n-40 0 1 -3.5E-1\n"
    fast = hkl_module._parse_well_formed(text)
    assert fast is not None
    slow = hkl_module._parse_by_line("t.hkl", text)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert [fast[2](row) for row in range(5)] == [slow[2](row) for row in range(5)] == [2, 3, 5, 6, 7]
    table = read_hkl(_write(tmp_path, text))
    assert table.F[1 - table.h_min, -2 - table.k_min, 3 - table.l_min] == 0.25  # the later line wins
    for unusual in ("1 2 3\n", "1.5 2 3 4\n", "1 2 3 nan\n", "1 2 3 4 5\n", "", "0 0 3000000000 1\n"):
        assert hkl_module._parse_well_formed("0 0 0 1\n" + unusual if unusual else unusual) is None
