"""All-or-nothing output files."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from nanobrag.errors import InputError
from nanobrag.io.files import StagedOutputs, write_bytes_atomic


def test_group_appears_only_when_complete(tmp_path):
    with pytest.raises(RuntimeError), StagedOutputs() as staged:
        staged.stage(tmp_path / "a.bin", b"first")
        raise RuntimeError("simulation failed")
    assert list(tmp_path.iterdir()) == []
    with StagedOutputs() as staged:
        staged.stage(tmp_path / "a.bin", b"first")
        staged.stage(tmp_path / "b.bin", b"second")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]


def test_special_files_are_written_in_place_not_replaced(tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    write_bytes_atomic(pipe, b"photons")
    reader.join(timeout=10)
    assert received == [b"photons"]
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_unwritable_target_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot write"):
        write_bytes_atomic(tmp_path / "missing" / "x.bin", b"x")
