"""nanobrag batch: many command lines in one process."""

from __future__ import annotations

import io

import numpy as np
import pytest

from nanobrag import cli
from nanobrag.batch import command_lines
from nanobrag.errors import InputError

TINY = "-cell {a} {a} {a} 90 90 90 -default_F 100 -lambda 1 -N 3 -detpixels 16 -pixel 1 -distance 50 -oversample 1"


def test_command_lines_skip_comments_and_the_program_name():
    source = io.StringIO("# a comment\n\nnanoBragg -cell 1 2\n  /opt/bin/nanobrag -N 2 # trailing\n-quiet 'a b'\n")
    assert command_lines(source, "f") == [(3, ["-cell", "1", "2"]), (4, ["-N", "2"]), (5, ["-quiet", "a b"])]


def test_an_unbalanced_quote_names_the_line():
    with pytest.raises(InputError, match="f:2: No closing quotation"):
        command_lines(io.StringIO("-N 2\n-floatfile 'x\n"), "f")


def test_batch_runs_every_line_and_reports_failures(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = [TINY.format(a=a) + f" -floatfile img{a}.bin -nopgm -nonoise -intfile img{a}.img" for a in (40, 50, 60)]
    lines.insert(1, "-cell 50 50 50 90 90 90 -default_F 100 -pixel none")
    (tmp_path / "jobs.txt").write_text("\n".join(lines) + "\n")
    assert cli.main(["batch", "jobs.txt", "--no-progress"]) == 2
    images = [np.fromfile(tmp_path / f"img{a}.bin", dtype="<f4") for a in (40, 50, 60)]
    assert all(image.size == 256 and image.max() > 0 for image in images)
    assert not np.array_equal(images[0], images[1])
    err = capsys.readouterr().err
    assert "-pixel: expected a number" in err and "jobs.txt:2 failed" in err and "1 of 4 command line(s) failed" in err


def test_batch_reads_stdin_and_matches_single_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = TINY.format(a=45) + " -floatfile {name} -nopgm -nonoise -intfile /dev/null -quiet"
    assert cli.main(line.format(name="single.bin").split()) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(line.format(name="batched.bin") + "\n"))
    assert cli.main(["batch", "-", "--no-progress"]) == 0
    assert (tmp_path / "single.bin").read_bytes() == (tmp_path / "batched.bin").read_bytes()


def test_unreadable_batch_file_is_one_line(tmp_path, capsys):
    assert cli.main(["batch", str(tmp_path / "missing.txt")]) == 2
    assert capsys.readouterr().err.startswith("nanobrag: error: ")
