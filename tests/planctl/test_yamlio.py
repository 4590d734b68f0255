"""Editing plans keeps the file as written; writes are atomic."""

from __future__ import annotations

import difflib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planctl.safeio import atomic_write_text
from planctl.yamlio import dump, make_yaml, text_scalar
from tests.planctl.planctl_testkit import write

# Two consistent layouts people write: four-space mappings with sequences indented under their
# key, and two-space mappings with dashes flush with it. (ruamel applies one indentation per file.)
INDENTED = """\
# Plan header comment.
initiative:
    id: RT-001          # initiative id
    title: "Round trip"
phases:
  - id: A
    title: Phase A

    # tasks follow
    tasks:
      - id: A1
        description: First
        state: "[ ]"    # double quoted on purpose
        guidance: >-
            A folded paragraph that
            wraps where its author chose.
      # a comment between tasks
      - id: A2
        description: Second
"""
FLUSH = """\
initiative: {id: RT-001, title: Round trip}
phases:
- id: A
  title: Phase A
  tasks:
  - id: A1
    description: First
    state: "[ ]"  # keep me
    guidance: 'single quoted: yes'
  - id: A2
    description: Second
"""


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("original", [INDENTED, FLUSH], ids=["indented", "flush"])
def test_state_changes_touch_only_the_state_lines(tmp_path, planctl, original):
    path = write(tmp_path / "plans" / "rt.yaml", original)
    state_line = next(line for line in original.splitlines() if "state:" in line)
    done_line = state_line.replace('"[ ]"', '"[D]"')

    assert planctl("set", "rt", "A1", "--state", "D", root=tmp_path).code == 0
    assert changed_lines(original, path.read_text()) == [f"-{state_line}", f"+{done_line}"]

    assert planctl("set", "rt", "A1", "--state", "S", "--why", "not needed", root=tmp_path).code == 0
    indent = state_line[: len(state_line) - len(state_line.lstrip())]
    assert changed_lines(original, path.read_text()) == [
        f"-{state_line}",
        f"+{state_line.replace('[ ]', '[S]')}",
        f"+{indent}reason: not needed",
    ]

    assert planctl("set", "rt", "A1", "--state", "open", root=tmp_path).code == 0
    assert path.read_text() == original


def test_a_task_without_state_gets_one_after_its_description(tmp_path, planctl):
    path = write(tmp_path / "plans" / "rt.yaml", INDENTED)
    assert planctl("set", "rt", "A2", "--state", "D", root=tmp_path).code == 0
    assert changed_lines(INDENTED, path.read_text()) == ["+        state: '[D]'"]


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]) | st.sampled_from(" \n#:-'\""),
        max_size=300,
    )
)
def test_prose_in_any_scalar_style_reads_back_unchanged(text):
    yaml = make_yaml()
    reread = yaml.load(dump({"guidance": text_scalar(text)}, yaml))
    assert reread["guidance"] == text
    # A second write of what was read keeps the same text, folds included.
    assert dump(reread, yaml) == dump({"guidance": text_scalar(text)}, yaml)


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    target = tmp_path / "plan.yaml"
    target.write_text("old\n")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.yaml"]


def test_unchanged_content_is_not_rewritten(tmp_path):
    target = tmp_path / "view.md"
    assert atomic_write_text(target, "same\n") is True
    mtime = target.stat().st_mtime_ns
    assert atomic_write_text(target, "same\n") is False
    assert target.stat().st_mtime_ns == mtime
