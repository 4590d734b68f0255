"""planctl status: counts, progress and the next task, as a table or JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
