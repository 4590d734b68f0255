"""All-or-nothing output files."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from nanobrag.errors import InputError
from nanobrag.io.files import StagedOutputs, is_staged_temporary, read_input_bytes, write_bytes_atomic


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


def test_special_files_are_written_before_any_regular_file_appears(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    full = r"^-intfile: cannot write /dev/full: No space left on device$"
    with pytest.raises(InputError, match=full), StagedOutputs() as staged:
        staged.claim(tmp_path / "float.bin", "-floatfile")
        staged.claim("/dev/full", "-intfile")
        staged.stage(tmp_path / "float.bin", b"image")
        staged.stage("/dev/full", b"header")
    assert list(tmp_path.iterdir()) == []  # neither the float file nor its temporary file


def test_one_regular_file_cannot_take_two_outputs(tmp_path):
    staged = StagedOutputs()
    staged.claim(tmp_path / "a.bin", "-floatfile")
    with pytest.raises(InputError, match=r"^-intfile: .*a\.bin is the same file as -floatfile .*a\.bin$"):
        staged.claim(tmp_path / "a.bin", "-intfile")
    staged.claim("/dev/null", "-intfile")
    staged.claim("/dev/null", "-noisefile")  # a device may take several outputs
    staged.discard()


def test_chunks_are_written_in_order(tmp_path):
    write_bytes_atomic(tmp_path / "c.bin", (part for part in (b"ab", b"", b"cd")))
    assert (tmp_path / "c.bin").read_bytes() == b"abcd"


def test_block_devices_are_never_outputs():
    block = next((entry.path for entry in os.scandir("/dev") if stat.S_ISBLK(os.stat(entry.path).st_mode)), None)
    if block is None:
        pytest.skip("no block device visible")
    with pytest.raises(InputError, match="block device"):
        StagedOutputs().claim(block, "-floatfile")


def test_input_limits(tmp_path):
    (tmp_path / "big.txt").write_bytes(b"1" * 2000)
    assert read_input_bytes(tmp_path / "big.txt") == b"1" * 2000
    with pytest.raises(InputError, match=r"^cannot read list .*big\.txt: more than 1000 bytes$"):
        read_input_bytes(tmp_path / "big.txt", "list", limit=1000)
    with pytest.raises(InputError, match=r"^cannot read list .*: Is a directory$"):
        read_input_bytes(tmp_path, "list")


def test_a_temporary_for_a_writer_of_its_own_appears_only_at_commit(tmp_path):
    with pytest.raises(RuntimeError), StagedOutputs() as staged:
        temporary = staged.temporary(tmp_path / "shard.h5")
        temporary.write_bytes(b"half a shard")
        assert is_staged_temporary(temporary.name) and temporary.parent == tmp_path
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with StagedOutputs() as staged:
        staged.temporary(tmp_path / "shard.h5").write_bytes(b"a shard")
        assert not (tmp_path / "shard.h5").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["shard.h5"] and (tmp_path / "shard.h5").read_bytes() == b"a shard"
    with pytest.raises(InputError, match="/dev/null: not a regular file"), StagedOutputs() as staged:
        staged.temporary("/dev/null")
    assert not is_staged_temporary("shard.h5") and not is_staged_temporary(".shard.h5.tmp")
