"""status, show, next, set and schema on small projects, and their error paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from planctl.cli.schema_export import plan_json_schema
from tests.planctl.planctl_testkit import SMALL_PLAN, write

REPO = Path(__file__).resolve().parents[3]


def test_status_shows_counts_progress_and_next_task(project, planctl):
    write(
        project / "plans" / "other.yaml",
        SMALL_PLAN.replace("DEMO-001", "OTHER-002").replace("'[ ]'", "'[D]'"),
    )
    result = planctl("status", root=project)
    assert result.code == 0
    demo, other = result.out.split("\n\n")[:2]
    assert demo.startswith("DEMO-001 — Demo initiative")
    assert "1/4 (25%) in progress  plans/demo.yaml" in demo
    assert "A      First phase      1        0     1" in demo
    assert "Next: A2 — Second task" in demo
    assert "4/4 (100%) done" in other and "Next: nothing ready" in other


def test_status_json_is_machine_readable(project, planctl):
    result = planctl("status", "DEMO-001", "--json", root=project)
    [summary] = json.loads(result.out)
    assert summary["initiative"] == "DEMO-001"
    assert (summary["done"], summary["skipped"], summary["open"], summary["total"]) == (1, 0, 3, 4)
    assert summary["phases"][1] == {
        "id": "B",
        "title": "Second phase",
        "done": 0,
        "skipped": 0,
        "open": 2,
        "in_progress": 0,
        "blocked": 0,
    }
    assert [n["task"] for n in summary["next"]] == ["A2"]


def test_status_of_several_plans_is_one_table(tmp_path, shared_dir):
    """A plans/ folder with every shared plan: one readable block per plan, each with its next task.
    (How fast this is, the must-show "under 1 s", is measured by benchmarks/bench_planctl_status.py.)"""
    (tmp_path / "plans").mkdir()
    for markdown in sorted((shared_dir / "plans_md").glob("*.md")):
        subprocess.run(
            [sys.executable, "-m", "planctl", "--root", tmp_path, "import", markdown],
            check=True,
            capture_output=True,
        )
    done = subprocess.run(
        [sys.executable, "-m", "planctl", "--root", tmp_path, "status"], check=True, capture_output=True, text=True
    )
    assert done.stdout.count("Next: ") == 5
    assert "GRADIENT-FLOW-001" in done.stdout


def test_next_honours_dependencies_and_required_phases(project, planctl):
    assert [r["task"] for r in json.loads(planctl("next", "--json", root=project).out)] == ["A2"]
    assert planctl("set", "demo", "A2", "--state", "S", "--why", "not needed", root=project).code == 0
    assert [r["task"] for r in json.loads(planctl("next", "--json", root=project).out)] == ["B1"]
    assert planctl("set", "demo", "B1", "--state", "D", root=project).code == 0
    table = planctl("next", root=project).out
    assert "DEMO-001    B      B2" in table


def test_show_task_lists_state_and_prerequisites(project, planctl):
    result = planctl("show", "demo", "B2", root=project)
    assert result.code == 0
    assert result.out.splitlines()[:3] == [
        "DEMO-001 B2 [ ] — Needs B1",
        "Phase B — Second phase",
        "Needs: A1 [D], A2 [ ], B1 [ ]",
    ]
    details = json.loads(planctl("show", "demo", "B2", "--json", root=project).out)
    assert details["waiting_for"] == ["A2", "B1"] and details["depends_on"] == ["B1"]


def test_set_records_transitions_and_refreshes_the_view(project, planctl):
    result = planctl("set", "DEMO-001", "A2", "--state", "S", "--why", "covered by A1", root=project)
    assert (result.code, result.out.strip()) == (0, "DEMO-001 A2: [ ] -> [S]")
    assert planctl("set", "demo", "A2", "--state", "open", root=project).code == 0
    records = (project / "attempts" / "demo.yaml").read_text()
    assert "task: A2\n  before: '[ ]'\n  after: '[S]'\n  why: covered by A1" in records
    assert "before: '[S]'\n  after: '[ ]'" in records
    assert "| A2 | Second task | [ ] |" in (project / "docs" / "plans" / "demo.md").read_text()


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


def test_schema_export_matches_the_committed_schema(tmp_path, planctl):
    schema = json.loads(plan_json_schema())
    assert schema["$defs"]["Task"]["properties"]["state"]["$ref"] == "#/$defs/TaskState"
    assert schema["$defs"]["TaskState"]["enum"] == ["[ ]", "[P]", "[B]", "[D]", "[S]"]
    committed = REPO / "schemas" / "plan.schema.json"
    assert committed.read_text() == plan_json_schema(), "run: planctl schema --out schemas/plan.schema.json"
    out = tmp_path / "plan.schema.json"
    assert planctl("schema", "--out", out).code == 0 and out.read_text() == plan_json_schema()


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


def test_set_with_a_broken_template_writes_nothing(project, planctl):
    write(project / "templates" / "plan.md.j2", "{{ oops\n")
    before = (project / "plans" / "demo.yaml").read_text()
    result = planctl("set", "demo", "A2", "--state", "D", root=project)
    assert result.code == 2 and "template syntax error" in result.err
    assert (project / "plans" / "demo.yaml").read_text() == before
    assert not (project / "attempts").exists()
