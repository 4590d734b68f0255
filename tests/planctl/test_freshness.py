"""Stale evidence: the inputs of a task, their hashes in every attempt, and status/show saying what changed."""

from __future__ import annotations

import json
from pathlib import Path

from planctl.freshness import task_manifest
from planctl.project import Project
from planctl.store import read_plan
from tests.planctl.planctl_testkit import write


def stale_of(planctl, repo: Path) -> dict[str, dict]:
    result = planctl("status", "run", "--json", root=repo)
    assert result.code == 0, result.err
    [summary] = json.loads(result.out)
    return {item["task"]: item for item in summary["stale"]}


def test_an_input_edited_after_a_pass_makes_the_task_stale_and_says_which(repo, planctl):
    assert planctl("run", "run", "A1", root=repo).code == 0
    assert stale_of(planctl, repo) == {}
    bundle = repo / json.loads(planctl("attempts", "run", "--json", root=repo).out)[0]["bundle"]
    manifest = json.loads((bundle / "inputs.json").read_text())
    assert set(manifest["files"]) == {"plans/run.yaml#A1.run", "tests/test_pass.py"}

    test = repo / "tests" / "test_pass.py"
    test.write_text(test.read_text() + "# edited after the pass\n")
    stale = stale_of(planctl, repo)["A1"]
    assert stale | {"reason": None} == {
        "task": "A1",
        "phase": "A",
        "status": "stale",
        "reason": None,
        "since": 3,
        "changed": ["tests/test_pass.py"],
    }
    assert stale["reason"] == "inputs changed since attempt #3"
    text = planctl("status", "run", root=repo).out
    assert "Stale: A1 — inputs changed since attempt #3: tests/test_pass.py" in text

    shown = planctl("show", "run", "A1", root=repo).out
    assert "Evidence: stale — inputs changed since attempt #3\n  changed: tests/test_pass.py" in shown
    assert json.loads(planctl("show", "run", "A1", "--json", root=repo).out)["evidence"]["changed"] == [
        "tests/test_pass.py"
    ]
    assert (
        "## Stale evidence\n\n- A1: inputs changed since attempt #3: tests/test_pass.py"
        in planctl("show", "run", root=repo).out
    )


def test_editing_the_run_spec_makes_its_old_proof_stale(repo, planctl):
    assert planctl("run", "run", "A1", root=repo).code == 0
    plan = repo / "plans" / "run.yaml"
    plan.write_text(plan.read_text().replace("tests/test_pass.py\n", "tests/test_pass.py -x\n", 1))
    assert stale_of(planctl, repo)["A1"]["changed"] == ["plans/run.yaml#A1.run"]


def test_done_tasks_without_evidence_are_stale_and_without_a_run_spec_unverifiable(project, planctl):
    write(
        project / "plans" / "demo.yaml",
        (project / "plans" / "demo.yaml")
        .read_text()
        .replace(
            "        guidance: Done already.\n", "        guidance: Done already.\n        run: {command: 'true'}\n"
        ),
    )
    planctl("set", "demo", "A2", "--state", "D", root=project)
    [summary] = json.loads(planctl("status", "--json", root=project).out)
    assert [(s["task"], s["reason"]) for s in summary["stale"]] == [("A1", "no passing attempt on record")]
    assert summary["unverifiable"] == ["A2"]
    assert "Unverifiable (done without a run spec): A2" in planctl("status", root=project).out


PLAN = """\
initiative: {id: IN-001, title: Inputs}
phases:
  - id: A
    title: Inputs
    tasks:
      - id: A1
        description: derived inputs
        run:
          command: python -m pytest tests/test_x.py::test_one && cat docs/notes.md . > /dev/null
          expect:
            files: [{path: data/table.csv, contains: x}, {path: $PLANCTL_BUNDLE/out.json}]
      - id: A2
        description: declared inputs
        run:
          command: python tools/fit.py
          inputs: ['data/*.csv', missing/*.h5]
"""


def manifest(root: Path, task: str) -> dict[str, str | None]:
    plan_file = read_plan(Project(root), root / "plans" / "inputs.yaml")
    return task_manifest(Project(root), plan_file, plan_file.task(task)).files


def test_inputs_are_what_the_command_and_checks_name_plus_source_packages_never_planctl_outputs(tmp_path):
    write(tmp_path / "plans" / "inputs.yaml", PLAN)
    for name in ("tests/test_x.py", "data/table.csv", "data/other.csv", "tools/fit.py", "pkg/__init__.py"):
        write(tmp_path / name, f"{name}\n")
    write(tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc", "compiled")
    write(tmp_path / "tests" / "__init__.py", "")
    write(tmp_path / "ledgers" / "fix_plan.md", "generated")
    write(tmp_path / "attempts" / "inputs.yaml", "generated")
    write(tmp_path / "reports" / "in-001" / "phase_a" / "x" / "summary.md", "evidence")
    write(
        tmp_path / "docs" / "notes.md",
        "# Notes\n<!-- planctl:attempts IN-001 -->\n- attempt #3\n<!-- planctl:end -->\n",
    )

    derived = manifest(tmp_path, "A1")
    # '.' names the whole project: every file except what planctl writes, hidden and compiled files.
    assert sorted(derived) == [
        "data/other.csv",
        "data/table.csv",
        "docs/notes.md",
        "pkg/__init__.py",
        "plans/inputs.yaml#A1.run",
        "tests/__init__.py",
        "tests/test_x.py",
        "tools/fit.py",
    ]
    declared = manifest(tmp_path, "A2")
    assert sorted(declared) == ["data/other.csv", "data/table.csv", "missing/*.h5", "plans/inputs.yaml#A2.run"]
    assert declared["missing/*.h5"] is None

    # What planctl writes into a doc's generated blocks is not part of it; the rest is.
    notes = tmp_path / "docs" / "notes.md"
    notes.write_text(notes.read_text().replace("- attempt #3\n", "- attempt #3\n- attempt #4\n"))
    assert manifest(tmp_path, "A1") == derived
    notes.write_text(notes.read_text().replace("# Notes", "# Notes, edited"))
    assert manifest(tmp_path, "A1")["docs/notes.md"] != derived["docs/notes.md"]


def test_declared_inputs_stay_inside_the_project(tmp_path, planctl):
    write(
        tmp_path / "plans" / "inputs.yaml", PLAN.replace("inputs: ['data/*.csv', missing/*.h5]", "inputs: [../*.txt]")
    )
    result = planctl("validate", root=tmp_path)
    assert result.code == 1
    assert "task A2: input '../*.txt'" in result.out and "outside the project" in result.out
