"""Hostile input for every file reader: each gives a result or one clean InputError.

Hypothesis writes files made of the pieces a reader looks for (numbers of every size and sign,
NaN, infinity, huge integers, words, stray bytes, delimiters) and also plain random bytes. The only
acceptable outcomes are a result or :class:`InputError`; any other exception fails the test, and
the deadline catches a reader that hangs or crawls. The memory available to the HKL reader is pinned
to 64 MiB, so that an index range that would need a large dense table is refused instead of allocated.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nanobrag.config import CrystalConfig, SimulationConfig
from nanobrag.errors import InputError
from nanobrag.flags import parse_flags
from nanobrag.io import hkl as hkl_module
from nanobrag.io.hkl import read_dump, read_hkl
from nanobrag.io.matrix import read_mosflm_matrix
from nanobrag.io.smv import read_smv
from nanobrag.io.sources import read_sourcefile

FUZZ = settings(
    max_examples=80,
    deadline=2000,  # milliseconds per example: a hang or a runaway allocation fails here
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

numbers = st.one_of(
    st.integers(min_value=-5, max_value=5),
    st.integers(),  # arbitrarily large, like 99999999999999999999
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["nan", "inf", "-inf", "1e300", "-1e-300", "0", "-0", "1_0", "0x10", "1e999"]),
).map(str)
words = st.one_of(numbers, st.text(alphabet=st.characters(codec="latin-1"), min_size=0, max_size=6))


def _line(tokens: st.SearchStrategy[str], separators: st.SearchStrategy[str] = st.just(" ")) -> st.SearchStrategy:
    return st.tuples(st.lists(tokens, min_size=0, max_size=7), separators).map(lambda t: t[1].join(t[0]))


def _text_file(line: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    text = st.lists(line, min_size=0, max_size=12).map(lambda lines: "\n".join(lines).encode("latin-1", "replace"))
    return st.one_of(text, st.binary(max_size=300))


@pytest.fixture
def small_memory(monkeypatch):
    monkeypatch.setattr(hkl_module, "available_memory", lambda: 64 * 2**20)


def _outcome(read, path):
    """Call a reader; an InputError must be one line naming the file."""
    try:
        return read(path)
    except InputError as err:
        message = str(err)
        assert "\n" not in message and str(path) in message, message
        return None


@FUZZ
@given(content=_text_file(st.one_of(_line(numbers), _line(words))), default_F=st.floats(-1e3, 1e3))
def test_hkl_reader(tmp_path, small_memory, content, default_F):
    path = tmp_path / "fuzz.hkl"
    path.write_bytes(content)
    table = _outcome(lambda p: read_hkl(p, default_F), path)
    if table is not None:
        assert np.isfinite(table.F).all() and table.count >= 1
        assert table.F.shape == (
            table.h_max - table.h_min + 1,
            table.k_max - table.k_min + 1,
            table.l_max - table.l_min + 1,
        )


@FUZZ
@given(
    bounds=st.lists(st.integers(-(2**40), 2**40) | st.integers(-3, 3), min_size=0, max_size=7),
    payload=st.binary(max_size=600) | st.lists(st.floats(), max_size=40).map(lambda v: struct.pack(f"<{len(v)}d", *v)),
)
def test_hkl_cache_reader(tmp_path, bounds, payload):
    path = tmp_path / "Fdump.bin"
    path.write_bytes(" ".join(map(str, bounds)).encode() + b"\n\f" + payload)
    table = _outcome(read_dump, path)
    if table is not None:
        assert np.isfinite(table.F).all()


@FUZZ
@given(content=_text_file(st.one_of(_line(numbers), _line(words))))
def test_matrix_reader_and_its_cell(tmp_path, content):
    """The reader, then the crystal it describes, through the -mat flag as a user reaches them."""
    path = tmp_path / "fuzz.mat"
    path.write_bytes(content)
    matrix = _outcome(read_mosflm_matrix, path)
    if matrix is not None:
        assert all(math.isfinite(v) for row in matrix for v in row)
        try:
            simulation, _, _ = parse_flags(["-mat", str(path), "-default_F", "1"])
        except InputError as err:
            assert str(err).startswith("-mat: ") and "\n" not in str(err)
        else:
            assert isinstance(simulation.crystal, CrystalConfig)


@FUZZ
@given(content=_text_file(_line(numbers | words, st.sampled_from([" ", "\t", ",", ";", ":", "!", " ,; "]))))
def test_source_file_reader(tmp_path, content):
    path = tmp_path / "sources.txt"
    path.write_bytes(content)
    sources = _outcome(read_sourcefile, path)
    if sources is not None:
        assert sources.shape[1] == 5 and not np.isinf(sources).any()
        given_wavelengths = sources[:, 4][~np.isnan(sources[:, 4])]
        assert (given_wavelengths > 0).all()


_SMV_KEYS = ["HEADER_BYTES", "SIZE1", "SIZE2", "BYTE_ORDER", "TYPE", "DIM", "PIXEL_SIZE"]
_SMV_VALUES = numbers | st.sampled_from(["512", "4", "little_endian", "big_endian", "unsigned_short", "float", "x"])


@FUZZ
@given(
    fields=st.lists(st.tuples(st.sampled_from(_SMV_KEYS) | st.text(max_size=4), _SMV_VALUES), max_size=8),
    opening=st.sampled_from([b"{\n", b"", b"{"]),
    closing=st.sampled_from([b"}\f", b"}", b""]),
    pad_to=st.sampled_from([0, 512, 1024]),
    payload=st.binary(max_size=200),
)
def test_smv_reader(tmp_path, fields, opening, closing, pad_to, payload):
    header = opening + "".join(f"{k}={v};\n" for k, v in fields).encode("latin-1", "replace") + closing
    path = tmp_path / "fuzz.img"
    path.write_bytes(header.ljust(pad_to, b" ") + payload)
    result = _outcome(read_smv, path)
    if result is not None:
        values, pixels = result
        assert pixels.shape == (int(values["SIZE2"]), int(values["SIZE1"]))


@FUZZ
@given(data=st.binary(max_size=2000))
def test_smv_reader_random_bytes(tmp_path, data):
    path = tmp_path / "random.img"
    path.write_bytes(data)
    _outcome(read_smv, path)


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@FUZZ
@given(
    flag=st.sampled_from(
        ["-distance", "-lambda", "-pixel", "-N", "-oversample", "-mosaic", "-dispersion", "-fluence", "-default_F",
         "-polar", "-detsize", "-detector_thick", "-water", "-xtalsize", "-phistep", "-osc", "-scale", "-Xbeam",
         "-beamsize", "-flux", "-exposure", "-divergence", "-Na"]
    ),
    value=finite_or_not.map(repr) | st.integers(-(2**40), 2**40).map(str),
)  # fmt: skip
def test_any_number_on_any_flag_is_a_result_or_one_clean_error(flag, value):
    """What the config accepts is finite and makes sense; everything else is one InputError naming the flag."""
    try:
        simulation, _, _ = parse_flags(["-cell", "100", "-default_F", "1", flag, value])
    except InputError as err:
        assert flag in str(err) and "\n" not in str(err)
    else:
        assert isinstance(simulation, SimulationConfig)
        dumped = simulation.model_dump()
        sections = [section for section in dumped.values() if isinstance(section, dict)]  # not flags like corrected
        finite = [v for section in sections for v in section.values() if isinstance(v, float)]
        assert all(math.isfinite(v) for v in finite)
