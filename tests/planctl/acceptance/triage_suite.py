"""A throwaway project whose suite fails in known ways, for the triage tests.

Its 15 tests: 5 pass, 1 is skipped, 1 xfails; one cause (``mylib.calc.mean``) fails three
parametrised tests, another (a wrong expectation) fails one; a fixture that cannot reach its
database errors two tests; one test hangs until its chunk's timeout, and the test after it in
the same file never runs. ``break_mean``/``fix_mean`` switch the first cause on and off.
"""

from __future__ import annotations

from pathlib import Path

from tests.planctl.planctl_testkit import commit_everything, git, write

TRIAGE_PLAN = """\
initiative: {id: SUITE-TRIAGE, title: Triage of the throwaway suite}
artifacts_root: reports/suite-triage
guard_env: {TRIAGE_GUARD: 'on'}
triage:
  chunks: 3
  jobs: 2
  timeout_per_chunk: 10
"""

# Triage runs are attempts at a task of the triage initiative (its first, by default).
TRIAGE_PHASE = """\
phases:
  - id: O
    title: Baseline
    tasks:
      - {id: O1, description: Record a full-suite baseline}
"""
TRIAGE_PLAN += TRIAGE_PHASE

FIX_PLAN = """\
initiative: {id: MEAN-FIX, title: Fix the mean}
phases:
  - id: A
    title: Fix
    tasks:
      - id: A1
        description: Repair mylib.calc.mean
        state: '[ ]'   # kept by the link
      - id: A2
        description: Verify the mean tests
        run:
          command: python -m pytest -q -p no:cacheprovider tests/test_mean.py
"""

MEAN_BROKEN = """\
def mean(values):
    if values:
        raise ValueError(f"cannot average {len(values)} values: total {sum(values)} at {hex(id(values))}")
    return 0.0
"""

MEAN_FIXED = """\
def mean(values):
    return sum(values) / len(values) if values else 0.0
"""

FILES = {
    # Without hypothesis' plugin every pytest process of a run starts a second sooner.
    "pytest.ini": "[pytest]\npythonpath = .\naddopts = -p no:cacheprovider -p no:hypothesispytest\n",
    "mylib/__init__.py": "",
    "mylib/calc.py": MEAN_BROKEN,
    "conftest.py": """\
import os

import pytest


@pytest.fixture
def database():
    raise ConnectionError(f"database at /tmp/db-{os.getpid()}/socket is not reachable")
""",
    "tests/test_basic.py": """\
import pytest


def test_pass_one():
    assert 1 + 1 == 2


def test_pass_two():
    assert "ab".upper() == "AB"


@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    raise AssertionError("never runs")


@pytest.mark.xfail(reason="known rounding issue", strict=True)
def test_known_bug():
    assert 0.1 + 0.2 == 0.3
""",
    "tests/test_db.py": """\
def test_query(database):
    assert database


def test_insert(database):
    assert database
""",
    "tests/test_mean.py": """\
import pytest

from mylib.calc import mean


@pytest.mark.parametrize("values", [[1, 2], [3, 4, 5], [6, 7, 8, 9]])
def test_mean(values):
    assert mean(values) == sum(values) / len(values)


def test_mean_of_nothing():
    assert mean([]) == 0.0
""",
    "tests/test_parse.py": """\
def parse(text):
    return int(text)


def test_parse_int():
    assert parse("7") == 7


def test_parse_plus_one():
    assert parse("7") == 8
""",
    "tests/test_zz_hang.py": """\
import json
import os
import time
from pathlib import Path


def test_before_hang():
    assert True


def test_hangs():
    # What the chunk's process got from planctl: the plan's guard environment and the attempt's variables.
    names = ("TRIAGE_GUARD", "PLANCTL_PLAN", "PLANCTL_TASK", "PLANCTL_ATTEMPT", "PLANCTL_BUNDLE")
    Path("hang.env").write_text(json.dumps({name: os.environ.get(name) for name in names}))
    Path("hang.pid").write_text(str(os.getpid()))  # lets a test see that the stop reached it
    time.sleep(600)


def test_after_hang():
    assert True
""",
    ".gitignore": ".planctl.lock\n__pycache__/\nhang.pid\nhang.env\n",
}


def make_suite_project(root: Path, *, hang: bool = True) -> Path:
    for name, text in FILES.items():
        if hang or name != "tests/test_zz_hang.py":
            write(root / name, text)
    write(root / "plans" / "triage.yaml", TRIAGE_PLAN)
    write(root / "plans" / "mean-fix.yaml", FIX_PLAN)
    return commit_everything(root, "a suite with known failures")


def set_mean(root: Path, text: str, message: str) -> None:
    (root / "mylib" / "calc.py").write_text(text, encoding="utf-8")
    git(root, "commit", "-q", "-am", message)
