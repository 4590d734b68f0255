"""Failure signatures: what varies between runs of one cause is normalised, what tells causes apart
is kept; stack dumps are read back to the frame a hung test was in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from planctl.triage.results import Failure
from planctl.triage.signature import dumped_frames, is_project_file, library_roots, normalise


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("assert 4 == 5\n +  where 4 = mean([1, 2])", "assert <n> == <n>"),
        ("expected 1e-6, got -3.5e+10 at step 7.", "expected <n>, got <n> at step <n>."),
        (
            "tensor([1.0, 2.0], dtype=torch.float64) != tensor([[1, 2], [3, (4)]])",
            "<tensor> != <tensor>",
        ),
        ("Parameter containing:\ntensor([0.5])", "Parameter containing:"),
        ("mismatch in array([1, 2, 3]) after 2 tries", "mismatch in <tensor> after <n> tries"),
        ("<Detector object at 0x7f3a2b1c9e50> has no pixels", "<Detector object at <addr>> has no pixels"),
        (
            "[Errno 2] No such file or directory: '/tmp/pytest-of-u/pytest-3/test_a0/x.bin'",
            "[Errno <n>] No such file or directory: '<path>'",
        ),
        ("cannot open C:\\Users\\x\\image.img", "cannot open <path>"),
        # Names with digits, versions and ratios' words are not numbers.
        (
            "float64 grid of C19 from v1.2 with x1 and 3/4 of a / b",
            "float64 grid of C19 from v1.2 with x1 and <n>/<n> of a / b",
        ),
        ("a   b\tc", "a b c"),
    ],
)
def test_normalise(message, normalised):
    assert normalise(message) == normalised


def test_long_messages_are_cut():
    assert len(normalise("word " * 200)) == 240


def test_the_innermost_project_frame_names_the_cluster(tmp_path):
    frames = [
        {"frame": "tests/test_a.py::test_a", "line": 3, "project": True},
        {"frame": "mylib/calc.py::mean", "line": 9, "project": True},
        {"frame": "numpy/core/_methods.py::_mean", "line": 120, "project": False},
    ]
    failure = Failure("tests/test_a.py::test_a", "call", "ValueError", "bad value 3\nmore", frames)
    assert str(failure.signature) == "ValueError: bad value <n> — mylib/calc.py::mean"
    assert failure.example == "tests/test_a.py::test_a (call): ValueError: bad value 3 — mylib/calc.py:9 in mean"
    outside = Failure("t", "call", "KeyError", "'x'", frames[2:])
    assert outside.signature.frame == ""


def test_project_files_exclude_the_environment(tmp_path):
    libraries = library_roots()
    assert is_project_file(str(tmp_path / "tests" / "test_a.py"), tmp_path, libraries)
    assert not is_project_file(str(tmp_path / ".venv/lib/python3/site-packages/torch/x.py"), tmp_path, libraries)
    assert not is_project_file(str(Path(sys.prefix) / "lib" / "x.py"), Path("/"), libraries)
    assert not is_project_file("<frozen runpy>", tmp_path, libraries)
    assert not is_project_file("/elsewhere/x.py", tmp_path, libraries)


DUMP = """\
Thread 0x00007f00000002 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 320 in wait
  File "/srv/p/tests/helpers.py", line 12 in poll

Current thread 0x00007f00000001 (most recent call first):
  File "/srv/p/tests/test_hang.py", line 9 in test_hangs
  File "/srv/p/.venv/lib/python3.11/site-packages/_pytest/python.py", line 187 in pytest_pyfunc_call
  File "<frozen runpy>", line 88 in _run_code
"""


def test_a_stack_dump_is_read_from_the_thread_that_ran_the_test():
    assert dumped_frames(DUMP) == [
        ("/srv/p/tests/test_hang.py", 9, "test_hangs"),
        ("/srv/p/.venv/lib/python3.11/site-packages/_pytest/python.py", 187, "pytest_pyfunc_call"),
        ("<frozen runpy>", 88, "_run_code"),
    ]
    assert dumped_frames("Fatal Python error: Segmentation fault\n") == []
