"""planctl triage link; what validate says about clusters and triage initiatives; runs refused or
failed before any chunk."""

from __future__ import annotations

from pathlib import Path

import pytest

from planctl.project import Project
from planctl.records import load_records, records_path
from tests.planctl.acceptance.triage_suite import TRIAGE_PHASE
from tests.planctl.planctl_testkit import write

TRIAGE = """\
initiative: {id: TRIAGE-1, title: triage}
triage:
  historical_clusters:
    - {id: C7, tests: ['tests/test_a.py::test_a'], origin: an older tracker}
    - {id: C8, tests: ['tests/test_b.py::test_b'], origin: an older tracker}
"""
TRIAGE += TRIAGE_PHASE

FIX = """\
# The fix.
initiative: {id: FIX-1, title: the fix}
guard_env: {A: '1'}   # kept
phases:
  - id: A
    title: Do
    tasks:
      - id: A1
        description: by hand
      - id: A2
        description: proves it
        run:
          command: pytest tests/test_a.py   # the check reads its junit XML
"""


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    write(tmp_path / "plans" / "triage.yaml", TRIAGE)
    write(tmp_path / "plans" / "fix.yaml", FIX)
    return tmp_path


def test_link_records_the_plan_and_the_task_in_the_yaml(linked, planctl):
    result = planctl("triage", "link", "c7", "FIX-1", "A2", root=linked)
    assert (result.code, result.out.strip()) == (0, "C7 linked to FIX-1 A2 (plans/fix.yaml)")
    assert (linked / "plans" / "fix.yaml").read_text() == FIX.replace(
        "guard_env: {A: '1'}   # kept\n", "guard_env: {A: '1'}   # kept\ncluster: C7\n"
    ).replace(
        "          command: pytest tests/test_a.py   # the check reads its junit XML\n",
        "          command: pytest tests/test_a.py   # the check reads its junit XML\n"
        "          expect:\n            clusters: [C7]\n",
    )
    assert "was already linked" in planctl("triage", "link", "C7", "FIX-1", "A2", root=linked).out
    assert planctl("triage", "link", "C8", "fix", root=linked).code == 0
    assert "cluster: [C7, C8]\n" in (linked / "plans" / "fix.yaml").read_text()
    tracker = (linked / "ledgers" / "remediation_tracker.md").read_text()
    assert (
        "| [C8](#c8) | historical — an older tracker | 1 of 1 failing | historical | historical | open | [FIX-1] |"
        in tracker
    )
    assert "- Proven by: [FIX-1] A2 [ ]" in tracker
    shown = planctl("triage", "show", "C7", root=linked).out
    assert "proven by: FIX-1 A2 [ ]" in shown and "historical: an older tracker" in shown
    assert planctl("validate", root=linked).code == 0


def test_link_refuses_what_it_cannot_record(linked, planctl):
    before = (linked / "plans" / "fix.yaml").read_text()
    unknown = planctl("triage", "link", "C9", "FIX-1", root=linked)
    assert (unknown.code, unknown.err) == (2, "planctl: error: unknown cluster 'C9' (clusters: C7, C8)\n")
    no_command = planctl("triage", "link", "C7", "FIX-1", "A1", root=linked)
    assert no_command.code == 2 and "task A1 has no command" in no_command.err
    assert planctl("triage", "link", "C7", "NOPE", root=linked).code == 2
    assert (linked / "plans" / "fix.yaml").read_text() == before
    assert not (linked / "ledgers").exists()


def test_validate_names_unknown_clusters_and_a_second_triage_initiative(linked, planctl):
    write(linked / "plans" / "fix.yaml", FIX.replace("phases:", "cluster: C9\nphases:"))
    result = planctl("validate", root=linked)
    assert (
        "plans/fix.yaml:4:10: warning: cluster C9 is not among the triage clusters of plans/triage.yaml" in result.out
    )
    write(linked / "plans" / "zz.yaml", "initiative: {id: ZZ-1, title: z}\ntriage: {}\nphases: []\n")
    result = planctl("validate", root=linked)
    assert result.code == 1
    assert "plans/zz.yaml:2:9: error: a second triage initiative (the first is plans/triage.yaml)" in result.out
    assert planctl("triage", "show", root=linked).err.startswith("planctl: error: several plans have a `triage:`")


def test_a_malformed_cluster_id_is_one_located_error(linked, planctl):
    write(linked / "plans" / "fix.yaml", FIX.replace("phases:", "cluster: [C7, X1]\nphases:"))
    result = planctl("validate", root=linked)
    assert result.code == 1
    assert "plans/fix.yaml:4:10: error: cluster: 'X1' is not a cluster id (C1, C2, ..." in result.out


def test_no_triage_initiative(tmp_path, planctl):
    write(tmp_path / "plans" / "fix.yaml", FIX)
    result = planctl("triage", "run", root=tmp_path)
    assert result.code == 2 and "no plan has a `triage:` section" in result.err
    assert not (tmp_path / "attempts").exists()


def test_a_suite_pytest_cannot_collect_is_a_failed_attempt(linked, planctl):
    result = planctl("triage", "run", "--no-commit", "--", "--no-such-pytest-option", root=linked)
    assert result.code == 1
    [attempt] = load_records(records_path(Project(linked), "triage"), "TRIAGE-1").attempts
    assert (attempt.outcome, attempt.triage.totals.collected, attempt.triage.chunks) == ("failed", 0, [])
    [check] = attempt.checks
    assert (
        check.name == "collection"
        and "pytest could not collect the suite (exit status 4 (usage error))" in check.detail
    )
    assert "no-such-pytest-option" in (linked / attempt.bundle / "collect" / "output.log").read_text()


def test_a_planctl_error_mid_run_is_recorded_then_raised(linked, monkeypatch, planctl):
    import planctl.triage.runner as runner

    def broken(*_args, **_kwargs):
        raise RuntimeError("chunking broke")

    monkeypatch.setattr(runner, "plan_chunks", broken)
    with pytest.raises(RuntimeError, match="chunking broke"):
        planctl("triage", "run", "--no-commit", root=linked)
    [attempt] = load_records(records_path(Project(linked), "triage"), "TRIAGE-1").attempts
    assert attempt.outcome == "failed"
    assert [(c.name, c.detail) for c in attempt.checks] == [("planctl", "internal error: RuntimeError: chunking broke")]
    assert "Stopped before any chunk ran: internal error" in (linked / attempt.bundle / "summary.md").read_text()


def test_the_runs_need_a_task_of_the_triage_initiative(tmp_path, planctl):
    write(tmp_path / "plans" / "triage.yaml", "initiative: {id: TRIAGE-1, title: triage}\ntriage: {}\nphases: []\n")
    result = planctl("validate", root=tmp_path)
    assert result.code == 1 and "plans/triage.yaml:2:9: error: the triage initiative has no task" in result.out
    refused = planctl("triage", "run", root=tmp_path)
    assert refused.code == 2 and "the triage initiative has no task: triage runs are attempts at one" in refused.err
    write(tmp_path / "plans" / "triage.yaml", TRIAGE.replace("triage:\n", "triage:\n  task: O9\n"))
    result = planctl("validate", root=tmp_path)
    assert result.code == 1 and "plans/triage.yaml:3:9: error: unknown task 'O9' (tasks: O1)" in result.out
    assert "unknown task 'O9'" in planctl("triage", "run", root=tmp_path).err
    assert not (tmp_path / "attempts").exists()
