"""planctl's shared command-line behaviour: one-line errors, exit statuses, finding the project root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.planctl.planctl_testkit import SMALL_PLAN

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "demo", "A2", "--state", "S"], "planctl: error: --state S needs --why REASON"),
        (["set", "demo", "A2", "--state", "X"], "planctl: error: --state X: expected open, P, B, D or S"),
        (
            ["set", "demo", "Z9", "--state", "D"],
            "planctl: error: plans/demo.yaml: unknown task 'Z9' (tasks: A1, A2, B1, B2)",
        ),
        (["show", "nope"], "planctl: error: unknown plan 'nope' (plans in plans: demo)"),
        (["status", "nope"], "planctl: error: unknown plan 'nope' (plans in plans: demo)"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(project, planctl, args, message):
    before = (project / "plans" / "demo.yaml").read_text()
    result = planctl(*args, root=project)
    assert (result.code, result.err.strip()) == (2, message)
    assert (project / "plans" / "demo.yaml").read_text() == before
    assert not (project / "attempts").exists()


@pytest.mark.parametrize(
    ("replace", "by", "location", "message"),
    [
        (
            "state: '[D]'",
            "state: '[X]'",
            "plans/demo.yaml:19:16",
            "phases[A].tasks[A1].state: unknown state marker '[X]' (expected '[ ]', '[P]', '[B]', '[D]' or '[S]')",
        ),
        (
            "state: '[D]'",
            "state: [D]",
            "plans/demo.yaml:19:16",
            "phases[A].tasks[A1].state: quote the state marker, e.g. state: '[D]' (unquoted it is a YAML list)",
        ),
        (
            "  title: Demo initiative",
            "  title: Demo: [initiative",
            "plans/demo.yaml:4:14",
            "invalid YAML: mapping values are not allowed here",
        ),
        (
            "        guidance: Done already.",
            "        guidence: Done already.",
            "plans/demo.yaml:20:9",
            "phases[A].tasks[A1]: unknown key 'guidence'",
        ),
        (
            "depends_on: [B1]",
            "depends_on: [Z1]",
            "plans/demo.yaml:34:22",
            "task B2 depends on unknown task 'Z1'",
        ),
        ("id: B2", "id: A2", "plans/demo.yaml:31:13", "duplicate task id 'A2'"),
    ],
)
def test_bad_plan_files_are_reported_with_their_location(project, planctl, replace, by, location, message):
    path = project / "plans" / "demo.yaml"
    path.write_text(SMALL_PLAN.replace(replace, by, 1))
    result = planctl("status", root=project)  # the folder's other plans are still shown; the exit says one failed
    assert (result.code, result.err) == (1, f"planctl: error: {location}: {message}; plan skipped\n")
    assert planctl("status", "demo", root=project).code == 2
    assert planctl("set", "demo", "A2", "--state", "D", root=project).code == 2
    assert path.read_text() == SMALL_PLAN.replace(replace, by, 1)


def test_project_root_is_found_from_a_subfolder(project, tmp_path):
    nested = project / "docs"
    env = {k: v for k, v in os.environ.items() if k != "PLANCTL_ROOT"}
    done = subprocess.run(
        [sys.executable, "-m", "planctl", "status", "--json"],
        cwd=nested,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)[0]["initiative"] == "DEMO-001"
    lost = subprocess.run(
        [sys.executable, "-m", "planctl", "status"],
        cwd=tmp_path.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    assert lost.returncode == 2 and "no plans/ folder in" in lost.stderr and "Traceback" not in lost.stderr


def test_undecodable_and_unwritable_files_get_one_line_and_exit_2(project, planctl, tmp_path):
    bad = tmp_path / "latin1.md"
    bad.write_bytes(b"### Phase A Caf\xe9\n")
    result = planctl("import", bad, root=project)
    assert (result.code, result.err) == (2, f"planctl: error: {bad}: not UTF-8 text: byte 15 cannot be decoded\n")
    nowhere = tmp_path / "missing" / "file"  # a regular file where a folder would have to be
    nowhere.parent.write_text("")
    result = planctl("schema", "--out", nowhere / "schema.json")
    assert result.code == 2 and result.err.startswith(f"planctl: error: {nowhere / 'schema.json'}: cannot write: ")
    (project / "docs" / "latin1.md").write_bytes(b"Caf\xe9, no generated blocks here\n")
    assert planctl("ledger", root=project).code == 0  # docs without planctl blocks are never decoded
    (project / "plans" / "latin1.yaml").write_bytes(b"initiative: Caf\xe9\n")
    result = planctl("status", root=project)
    message = "planctl: error: plans/latin1.yaml:1:1: not UTF-8 text: byte 15 cannot be decoded; plan skipped\n"
    assert (result.code, result.err) == (1, message)
    assert "DEMO-001" in result.out
