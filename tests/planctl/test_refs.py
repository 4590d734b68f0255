"""References to repository files: reading, writing and checking them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planctl.refs import Reference, check_reference
from tests.planctl.planctl_testkit import GUIDE, write


@pytest.mark.parametrize(
    ("text", "path", "lines", "sections"),
    [
        ("tests/test_gradients.py:360-444", "tests/test_gradients.py", (360, 444), ()),
        ("arch.md §15", "arch.md", None, ("15",)),
        ("docs/development/testing_strategy.md §4.1", "docs/development/testing_strategy.md", None, ("4.1",)),
        ('docs/checklist.md §"Gradient Tests"', "docs/checklist.md", None, ("Gradient Tests",)),
        ("specs/core.md §§3–4", "specs/core.md", None, ("3–4",)),
        ("arch.md §§2, 7.2", "arch.md", None, ("2", "7.2")),
        ("arch.md §8 and §15", "arch.md", None, ("8", "15")),
        ("x.py:12", "x.py", (12, 12), ()),
    ],
)
def test_reference_forms(text, path, lines, sections):
    assert Reference.parse(text) == Reference(path, lines, sections)


@pytest.mark.parametrize("text", ["", "plans/x.md Phase O", "x.py:0-3", "x.py:9-3"])
def test_unreadable_references_are_rejected(text):
    with pytest.raises(ValueError):
        Reference.parse(text)


_PATH = st.from_regex(r"[a-z_][a-z0-9_./-]{0,30}", fullmatch=True).filter(lambda p: ":" not in p)
_NUMBER = st.from_regex(r"[1-9][0-9]?(\.[1-9][0-9]?){0,2}", fullmatch=True)
_TITLE = st.from_regex(r"[A-Za-z][A-Za-z0-9 &()/-]{0,20}[A-Za-z0-9)]", fullmatch=True)


@given(
    _PATH,
    st.none() | st.tuples(st.integers(1, 500), st.integers(0, 500)).map(lambda t: (t[0], t[0] + t[1])),
    st.lists(_NUMBER | _TITLE, max_size=3).map(tuple),
)
def test_written_references_read_back_the_same(path, lines, sections):
    ref = Reference(path, lines, sections)
    assert Reference.parse(str(ref)) == ref


@pytest.mark.parametrize(
    ("ref", "problems"),
    [
        ("docs/guide.md §2", []),
        ("docs/guide.md §2.1", []),
        ('docs/guide.md §"gradient TESTS"', []),
        ("docs/guide.md §1–2", []),
        ("docs/guide.md:1-6", []),
        ("docs/guide.md §3", ["section §3 not found among the headings of docs/guide.md"]),
        ("docs/guide.md §1–3", ["section §3 not found among the headings of docs/guide.md"]),
        ("docs/guide.md:5-7", ["docs/guide.md has 6 lines; range 5-7 is past its end"]),
        ("docs §1", ["docs is a directory; line ranges and sections need a file"]),
        ("nowhere.md", ["nowhere.md does not exist"]),
    ],
)
def test_references_are_checked_against_files(tmp_path, ref, problems):
    write(tmp_path / "docs" / "guide.md", GUIDE)
    assert check_reference(tmp_path, Reference.parse(ref)) == problems
