"""In-progress and blocked tasks in status, next, set, the ledgers and run; importing a folder;
a broken plan in a folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from planctl.project import Project
from planctl.records import load_records, records_path
from planctl.store import read_plan
from tests.planctl.planctl_testkit import write

CORPUS = Path(__file__).resolve().parents[2] / "data" / "plans_md"

STATES_PLAN = """\
initiative: {id: STATES-001, title: states}
phases:
  - id: A
    title: first
    tasks:
      - {id: A1, description: under way, state: '[P]', run: {command: 'true'}}
      - {id: A2, description: waits for a GPU, state: '[B]', reason: no GPU yet, waits_on: [OTHER-001],
         run: {command: 'true'}}
      - {id: A3, description: open, state: '[ ]', run: {command: 'true'}}
      - {id: A4, description: after the blocked one, depends_on: [A2], run: {command: 'true'}}
"""


def test_status_next_and_ledgers_show_in_progress_and_blocked_tasks(tmp_path, planctl):
    write(tmp_path / "plans" / "states.yaml", STATES_PLAN)
    status = planctl("status", root=tmp_path)
    assert status.code == 0
    assert "Active  Blocked  Open" in status.out
    assert "Next: A1 — under way (in progress)" in status.out
    assert "Blocked: A2 — no GPU yet (waits on OTHER-001)" in status.out
    [summary] = json.loads(planctl("status", "--json", root=tmp_path).out)
    assert (summary["in_progress"], summary["blocked"], summary["open"]) == (1, 1, 2)
    assert summary["blocked_tasks"] == [{"task": "A2", "phase": "A", "reason": "no GPU yet", "waits_on": ["OTHER-001"]}]
    shown = planctl("show", "states", "A2", root=tmp_path).out
    assert "Reason: no GPU yet\nWaits on: OTHER-001\n" in shown
    ready = json.loads(planctl("next", "--json", root=tmp_path).out)
    assert [(r["task"], r["state"]) for r in ready] == [("A1", "[P]"), ("A3", "[ ]")]  # never A2, nor A4 behind it
    assert planctl("ledger", root=tmp_path).code == 0
    fix_plan = (tmp_path / "ledgers" / "fix_plan.md").read_text()
    assert "1 in progress, 1 blocked" in fix_plan
    assert "- A2 — blocked: no GPU yet (waits on OTHER-001)" in fix_plan
    view = (tmp_path / "docs" / "plans" / "states.md").read_text()
    assert "| A1 | under way | [P] |" in view and "| A2 | waits for a GPU | [B] | no GPU yet |" in view


def test_run_all_ready_never_runs_a_blocked_task(tmp_path, planctl):
    write(tmp_path / "plans" / "states.yaml", STATES_PLAN)
    assert planctl("run", "states", "--all-ready", "--no-commit", root=tmp_path).code == 0
    attempts = load_records(records_path(Project(tmp_path), "states"), "STATES-001").attempts
    assert [a.task for a in attempts] == ["A1", "A3"]
    refused = planctl("run", "states", "A4", "--no-commit", root=tmp_path)
    assert refused.code == 2 and "waiting for A2 [B]" in refused.err
    named = planctl("run", "states", "A2", "--no-commit", root=tmp_path)
    assert named.code == 2
    assert "task A2 is blocked: no GPU yet (waits on OTHER-001) (--force runs it anyway" in named.err
    assert len(load_records(records_path(Project(tmp_path), "states"), "STATES-001").attempts) == 2
    # --force runs it; the pass closes it, and the reason and waits_on go with the blocked state.
    assert planctl("run", "states", "A2", "--force", "--no-commit", root=tmp_path).code == 0
    task = read_plan(Project(tmp_path), tmp_path / "plans" / "states.yaml").task("A2")
    assert (task.state.value, task.reason, task.waits_on) == ("[D]", None, [])


def test_set_moves_tasks_to_blocked_and_in_progress(tmp_path, planctl):
    path = write(tmp_path / "plans" / "states.yaml", STATES_PLAN)
    missing = planctl("set", "states", "A3", "--state", "B", root=tmp_path)
    assert missing.code == 2 and "--state B needs --why REASON" in missing.err
    result = planctl("set", "states", "A3", "--state", "B", "--why", "needs A1", "--waits-on", "A1", root=tmp_path)
    assert result.code == 0 and "A3: [ ] -> [B]" in result.out
    task = read_plan(Project(tmp_path), path).task("A3")
    assert (task.state.value, task.reason, task.waits_on) == ("[B]", "needs A1", ["A1"])
    assert planctl("set", "states", "A3", "--state", "P", root=tmp_path).code == 0
    task = read_plan(Project(tmp_path), path).task("A3")
    assert (task.state.value, task.reason, task.waits_on) == ("[P]", None, [])
    assert [t.task for t in load_records(records_path(Project(tmp_path), "states"), "STATES-001").transitions] == [
        "A3",
        "A3",
    ]


def test_set_drops_a_kept_marker_when_the_state_changes(tmp_path, planctl):
    source = write(
        tmp_path / "m.md", "# MARK-001: m\n\n## Tasks\n| ID | Task | State |\n| --- | --- | --- |\n| A1 | x | [x] |\n"
    )
    (tmp_path / "plans").mkdir()
    assert planctl("import", source, root=tmp_path).code == 0
    assert "marker: '[x]'" in (tmp_path / "plans" / "m.yaml").read_text()
    assert planctl("set", "m", "A1", "--state", "open", root=tmp_path).code == 0
    assert "marker" not in (tmp_path / "plans" / "m.yaml").read_text()


def test_import_a_folder_prints_a_summary_and_writes_nothing_for_broken_files(tmp_path, planctl):
    folder = tmp_path / "md"
    shutil.copytree(CORPUS, folder, ignore=shutil.ignore_patterns("*.json"))
    (folder / "binary.md").write_bytes(b"\x00\x01\x02 not text")
    (folder / "empty.md").write_text("")
    (folder / "no-ids.md").write_text("# NOIDS-001\n\n| Task | State |\n| --- | --- |\n| do it | [ ] |\n")
    (tmp_path / "plans").mkdir()
    dry = planctl("import", folder, "--dry-run", root=tmp_path)
    assert dry.code == 1 and not list((tmp_path / "plans").iterdir())
    result = planctl("import", folder, root=tmp_path)
    assert result.code == 1
    lines = result.out.strip().splitlines()
    assert len(lines) == len(list(folder.iterdir())) + 1
    plans = len(list(CORPUS.glob("*.md")))
    assert lines[-1].startswith(f"total: {plans} of {plans + 3} files imported") and lines[-1].endswith("; 3 failed")
    assert any(line.startswith("binary.md") and "error: binary.md: binary file" in line for line in lines)
    assert any(line.startswith("empty.md") and "error: empty.md: empty file" in line for line in lines)
    assert any(line.startswith("no-ids.md") and "has no ID column" in line for line in lines)
    written = sorted(p.stem for p in (tmp_path / "plans").iterdir())
    assert len(written) == plans and not {"binary", "empty", "no-ids"} & set(written)
    assert planctl("validate", root=tmp_path).out.count("duplicate") == 0


def test_one_broken_plan_does_not_stop_a_folder(project, planctl):
    write(project / "plans" / "broken.yaml", "initiative: {id: BROKEN-1, title: b}\nphases: [{id: A}]\n")
    for command in ("status", "next", "ledger", "render"):
        result = planctl(command, root=project)
        assert result.code == 1, command
        assert result.err.count("\n") == 1 and "plans/broken.yaml" in result.err and "plan skipped" in result.err
    assert "DEMO-001" in planctl("status", root=project).out
    assert (project / "ledgers" / "fix_plan.md").exists()
